package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Secrets (a provider's API key, a setting's secrets) are sealed at rest with AES-256-GCM.
// The key is GLOW_SECRET_KEY's (Config.SecretKey) or, without it, the one in the data
// directory's secret.key, created with mode 0600 on first start. Every sealed value is bound
// to where it is stored (its row and field), so a value copied to another row does not open.
// The database keeps a sealed check value: a start with another key fails at once instead
// of failing every later read.

// SecretKeyFile is the key file's name in the data directory.
const SecretKeyFile = "secret.key"

// sealedPrefix marks a sealed value (and its format's version).
const sealedPrefix = "v1:"

type sealer struct{ aead cipher.AEAD }

// secretKey reads the key: GLOW_SECRET_KEY's, as 64 hex digits or base64 of 32 bytes, or
// the data directory's key file, created when missing.
func secretKey(cfg Config) ([]byte, error) {
	if cfg.SecretKey != "" {
		key, err := decodeKey(strings.TrimSpace(cfg.SecretKey))
		if err != nil {
			return nil, fmt.Errorf("GLOW_SECRET_KEY: %w", err)
		}
		return key, nil
	}
	if cfg.DataDir == "" {
		return nil, errors.New("secrets need a key: set GLOW_SECRET_KEY, or a data directory to keep " + SecretKeyFile + " in")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(cfg.DataDir, SecretKeyFile)
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create the secret key file: %w", err)
		}
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("write the secret key file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the secret key file: %w", err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): make it 0600", path, info.Mode().Perm())
	}
	key, err := decodeKey(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func decodeKey(text string) ([]byte, error) {
	if key, err := hex.DecodeString(text); err == nil && len(key) == 32 {
		return key, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(text); err == nil && len(key) == 32 {
			return key, nil
		}
	}
	return nil, errors.New("the key must be 32 bytes, as 64 hex digits or base64")
}

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts plain for the place where (the row and field it is stored in).
func (s *sealer) seal(plain, where string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), []byte(where)))
}

// open decrypts what seal gave for the same place.
func (s *sealer) open(sealed, where string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, sealedPrefix))
	if !strings.HasPrefix(sealed, sealedPrefix) || err != nil || len(raw) < s.aead.NonceSize() {
		return "", fmt.Errorf("secret of %s: not a sealed value", where)
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(where))
	if err != nil {
		return "", fmt.Errorf("secret of %s does not open with this key (was GLOW_SECRET_KEY changed?)", where)
	}
	return string(plain), nil
}

const checkPlace, checkText = "secret_check", "glow"

// checkSecrets makes sure the key is the one the database's secrets were sealed with (the
// first start stores the check value), then seals what an older version stored in plain
// text.
func (s *Store) checkSecrets(ctx context.Context) error {
	q := s.Q()
	var sealed []string
	if err := q.sel(ctx, &sealed, `SELECT sealed FROM secret_check`); err != nil {
		return err
	}
	if len(sealed) == 0 {
		if _, err := q.exec(ctx, `INSERT INTO secret_check (id, sealed) VALUES (1, ?)`, s.box.seal(checkText, checkPlace)); err != nil {
			return err
		}
	} else if text, err := s.box.open(sealed[0], checkPlace); err != nil || text != checkText {
		return errors.New("the secret key is not the one this database's secrets were sealed with: " +
			"set GLOW_SECRET_KEY (or the data directory's " + SecretKeyFile + ") back to that key")
	}
	var plain []struct {
		ID     string `db:"id"`
		APIKey string `db:"api_key"`
	}
	if err := q.sel(ctx, &plain, `SELECT id, api_key FROM providers WHERE api_key <> '' AND api_key NOT LIKE 'v1:%'`); err != nil {
		return err
	}
	for _, p := range plain {
		if _, err := q.exec(ctx, `UPDATE providers SET api_key = ? WHERE id = ?`, s.box.seal(p.APIKey, providerKeyPlace(p.ID)), p.ID); err != nil {
			return err
		}
	}
	return nil
}

func providerKeyPlace(id string) string { return "providers/" + id + "/api_key" }

func recordSecretPlace(id, name string) string { return "artifacts/" + id + "/secrets/" + name }
