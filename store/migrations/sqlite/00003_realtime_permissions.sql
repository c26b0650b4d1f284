-- +goose Up
-- Learners follow their own chats live (replies, runs) and ask about their profile; editors
-- see the models they may generate with.
INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('learner', 'attempt', 'generate'),
    ('learner', 'attempt', 'generations'),
    ('learner', 'attempt', 'watch'),
    ('learner', 'system',  'subscribe'),
    ('learner', 'system',  'unsubscribe'),
    ('learner', 'system',  'run_get'),
    ('learner', 'system',  'run_stop'),
    ('learner', 'system',  'run_pause'),
    ('learner', 'system',  'run_resume'),
    ('learner', 'system',  'run_answer'),
    ('learner', 'profile', 'generate'),
    ('learner', 'profile', 'generations'),
    ('learner', 'profile', 'watch'),
    ('editor',  'profile', 'generate'),
    ('editor',  'profile', 'generations'),
    ('editor',  'profile', 'watch'),
    ('editor',  'model',   'get'),
    ('editor',  'model',   'search');

-- +goose Down
DELETE FROM role_permissions WHERE (role = 'learner' AND (artifact, operation) IN
    (('attempt', 'generate'), ('attempt', 'generations'), ('attempt', 'watch'), ('system', 'subscribe'),
     ('system', 'unsubscribe'), ('system', 'run_get'), ('system', 'run_stop'), ('system', 'run_pause'),
     ('system', 'run_resume'), ('system', 'run_answer'), ('profile', 'generate'), ('profile', 'generations'),
     ('profile', 'watch')))
    OR (role = 'editor' AND artifact = 'profile' AND operation IN ('generate', 'generations', 'watch'))
    OR (role = 'editor' AND artifact = 'model' AND operation IN ('get', 'search'));
