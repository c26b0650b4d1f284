package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/problem"
)

// streamBuffer is how many live events a stream may fall behind before it is ended (the
// client then reconnects with Last-Event-ID and loses nothing).
const streamBuffer = 4096

// stream serves GET /<artifact>/stream: a topic's events named <artifact>.*, as server-sent
// events, replayed from since (or Last-Event-ID) and then live.
func (a *API) stream(w http.ResponseWriter, r *http.Request, st gen.Stream) {
	ctx, p := a.identifyStream(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	id := auth.FromContext(ctx)
	if id == nil {
		writeProblem(w, problem.Unauthorized("a bearer token is required"))
		return
	}
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		topic = events.ProfileTopic(id.ProfileID)
	}
	ctx, end := context.WithCancel(ctx)
	defer end()
	defer a.track(&openStream{id: id, end: end})()
	if err := a.opts.AuthorizeTopic(ctx, topic); err != nil {
		var p *problem.Problem
		if !errors.As(err, &p) {
			a.log.Error("authorize stream", "topic", topic, "err", err)
			p = problem.New(http.StatusInternalServerError, "the topic could not be checked")
		}
		writeProblem(w, p)
		return
	}
	since, fromNow, err := streamSince(r)
	if err != nil {
		writeProblem(w, problem.BadRequest(err.Error()))
		return
	}
	log := a.opts.Events
	if fromNow {
		if since, err = log.LastSeq(ctx, topic); err != nil {
			a.log.Error("stream", "topic", topic, "err", err)
			writeProblem(w, problem.New(http.StatusInternalServerError, "the stream could not start"))
			return
		}
	}
	// Every write must be done within WriteTimeout: a client that stops reading is dropped,
	// and resumes from its Last-Event-ID when it reads again.
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve further requests
	send := func(format string, args ...any) error {
		_ = rc.SetWriteDeadline(time.Now().Add(a.opts.WriteTimeout))
		_, err := fmt.Fprintf(w, format, args...)
		return err
	}
	flush := func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(a.opts.WriteTimeout))
		return rc.Flush()
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if flush() != nil {
		return
	}

	prefix := st.Artifact + "."
	replayed := 0 // events written before replay_done
	write := func(ev events.Event) error {
		if !strings.HasPrefix(ev.Name, prefix) {
			return nil
		}
		replayed++
		return send("id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Name, ev.Payload())
	}

	// The bulk of the replay is written as it is read; the rest, and the join to live
	// delivery, go through Attach, whose emits happen under the log's lock and so are only
	// collected here, then written.
	last := since
	for {
		evs, err := log.After(ctx, topic, last, 500)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if write(ev) != nil {
				return
			}
			last = ev.Seq
		}
		if flush() != nil {
			return
		}
		if len(evs) < 500 {
			break
		}
	}
	var tail []events.Event
	var live *events.Listener
	rep, err := log.Attach(ctx, topic, last, func(ev events.Event) { tail = append(tail, ev) },
		func(events.Replay) { live = log.Listen(topic, streamBuffer) })
	if err != nil {
		return
	}
	defer log.Unlisten(live)
	for _, ev := range tail {
		if write(ev) != nil {
			return
		}
	}
	truncated := false
	if first, _, err := log.Bounds(ctx, topic); err == nil {
		truncated = first > since+1
	}
	if send("event: replay_done\ndata: {\"topic\":%q,\"since\":%d,\"last_seq\":%d,\"replayed\":%d,\"truncated\":%t}\n\n",
		topic, since, rep.Last, replayed, truncated) != nil || flush() != nil {
		return
	}

	keepAlive := time.NewTicker(a.opts.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case ev := <-live.C:
			if write(ev) != nil || flush() != nil {
				return
			}
		case <-live.Lost:
			return // too far behind: the client resumes from its Last-Event-ID
		case <-keepAlive.C:
			if send(": keep-alive\n\n") != nil || flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// identifyStream is identify, or, for a request with no Authorization header and a ticket
// query parameter (a browser's EventSource), the identity the ticket was issued for.
func (a *API) identifyStream(r *http.Request) (context.Context, *problem.Problem) {
	ticket := r.URL.Query().Get("ticket")
	if ticket == "" || r.Header.Get("Authorization") != "" {
		return a.identify(r)
	}
	ctx := r.Context()
	id, err := a.resolver.RedeemStreamTicket(ctx, ticket)
	if errors.Is(err, auth.ErrUnauthorized) {
		return ctx, problem.Unauthorized("unknown, used or expired stream ticket; get another with system.stream_ticket")
	}
	if err != nil {
		a.log.Error("redeem stream ticket", "path", r.URL.Path, "err", err)
		return ctx, problem.New(http.StatusInternalServerError, "the ticket could not be checked")
	}
	return auth.NewContext(ctx, id), nil
}

// streamSince reads where a stream starts: ?since=, else Last-Event-ID, else from now.
func streamSince(r *http.Request) (since int64, fromNow bool, err error) {
	value, what := r.URL.Query().Get("since"), "since"
	if value == "" {
		value, what = r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	}
	if value == "" {
		return 0, true, nil
	}
	since, err = strconv.ParseInt(value, 10, 64)
	if err != nil || since < 0 {
		return 0, false, fmt.Errorf("%s must be a sequence number (0 or more), not %q", what, value)
	}
	return since, false, nil
}
