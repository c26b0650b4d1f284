package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// config is what glow login keeps for the operation commands: the server and the token.
type config struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// configPath is the file glow login writes: glow/config.json in the user's configuration
// directory ($XDG_CONFIG_HOME, ~/.config, …).
func configPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "glow", "config.json"), nil
}

// loadConfig reads what glow login kept; nothing when it never ran.
func loadConfig() config {
	var c config
	if path, err := configPath(); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(b, &c)
		}
	}
	return c
}

// login is glow login: it checks the token against the server and keeps both, readable by
// the user alone.
func login(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", firstOf(os.Getenv("GLOW_URL"), "http://127.0.0.1:8080"), "the glow server (GLOW_URL)")
	token := fs.String("token", os.Getenv("GLOW_TOKEN"), "the bearer token, from glow token create (GLOW_TOKEN)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: glow login --url URL --token TOKEN\n\n"+
			"Checks the token against the server and keeps both for the operation commands\n"+
			"(glow <artifact> <operation>), in glow/config.json of your configuration directory, mode 0600.\n\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *token == "" {
		fmt.Fprintln(stderr, "glow login: --token is required (glow token create makes one)")
		return errUsage
	}
	status, answer, err := post(*url, *token, "/profile/context", []byte("{}"))
	if err != nil {
		return fmt.Errorf("reach %s: %w", *url, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s refused the token: %d %s", *url, status, answer)
	}
	var who struct {
		Profile struct{ Name string }
	}
	_ = json.Unmarshal(answer, &who)
	path, err := configPath()
	if err != nil {
		return err
	}
	if err := writePrivate(path, config{URL: *url, Token: *token}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logged in to %s as %s (%s)\n", *url, who.Profile.Name, path)
	return nil
}

// writePrivate writes c to path, which only the user may read, in a directory only the
// user may enter.
func writePrivate(path string, c config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// A file that existed keeps its mode through OpenFile: make it the user's alone.
	err = errors.Join(f.Chmod(0o600), writeAll(f, b), f.Close())
	return err
}

func writeAll(w io.Writer, b []byte) error {
	_, err := w.Write(append(b, '\n'))
	return err
}
