package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/store"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const tokenUsage = `Usage:
  glow token create --profile NAME --role ROLE [--department NAME]… [--label TEXT]
                                     print a new token (creating the profile if needed)
  glow token revoke TOKEN|SESSION_ID revoke a token; its sockets are disconnected
  glow token list --profile NAME     list a profile's tokens

They work on the database directly (the server need not run): see the store flags of
"glow token create -h".
`

func token(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "create":
		return tokenCreate(args[1:], stdout, stderr)
	case "revoke":
		return tokenRevoke(args[1:], stderr)
	case "list":
		return tokenList(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenUsage)
		return nil
	}
	fmt.Fprintf(stderr, "glow token: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

// openStore parses the store flags with the command's own and opens the database.
func openStore(fs *flag.FlagSet, args []string) (*store.Store, error) {
	var opts server.Options
	opts.StoreFlags(fs)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return store.Open(ctx, opts.StoreConfig())
}

func tokenCreate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", "", "the profile's name; created if it does not exist (required)")
	role := fs.String("role", "", "the profile's role: admin, editor or learner (required)")
	label := fs.String("label", "", "what the token is for, shown by token list")
	var departments multiFlag
	fs.Var(&departments, "department", "a department to put the profile in, created if needed (repeatable)")
	st, err := openStore(fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	if strings.TrimSpace(*profile) == "" || strings.TrimSpace(*role) == "" {
		return errors.New("token create needs --profile and --role")
	}
	ctx := context.Background()
	var issued auth.Issued
	err = st.Tx(ctx, func(q store.Q) error {
		issued, err = auth.Issue(ctx, q, *profile, *role, *label, departments...)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (roles: admin, editor, learner)", err)
	}
	if err != nil {
		return err
	}
	switch {
	case issued.CreatedProfile:
		fmt.Fprintf(stderr, "created profile %q with role %s\n", issued.Profile.Name, issued.Profile.Role)
	case issued.PreviousRole != "":
		fmt.Fprintf(stderr, "changed the role of profile %q from %s to %s\n", issued.Profile.Name, issued.PreviousRole, issued.Profile.Role)
	}
	fmt.Fprintf(stderr, "token for profile %q, session %s\n", issued.Profile.Name, issued.Session.ID)
	fmt.Fprintln(stdout, issued.Token)
	return nil
}

func tokenRevoke(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow token revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	st, err := openStore(fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	if fs.NArg() != 1 {
		return errors.New("token revoke takes one argument: the token, or its session id")
	}
	ctx := context.Background()
	q := st.Q()
	arg := fs.Arg(0)
	var t store.Token
	if strings.HasPrefix(arg, auth.TokenPrefix) {
		t, err = q.TokenByHash(ctx, auth.HashToken(arg))
	} else if id, perr := uuid.Parse(arg); perr == nil {
		t, err = q.TokenByID(ctx, id)
	} else {
		return fmt.Errorf("%q is neither a token (%s…) nor a session id", arg, auth.TokenPrefix)
	}
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("no such token")
	}
	if err != nil {
		return err
	}
	changed, err := q.RevokeToken(ctx, t.ID)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(stderr, "session %s was already revoked\n", t.ID)
		return nil
	}
	fmt.Fprintf(stderr, "revoked session %s; a running server disconnects its sockets within a second\n", t.ID)
	return nil
}

func tokenList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow token list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", "", "the profile's name (required)")
	st, err := openStore(fs, args)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	p, err := st.Q().ProfileByName(ctx, *profile)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no profile named %q", *profile)
	}
	if err != nil {
		return err
	}
	ts, err := st.Q().ProfileTokens(ctx, p.ID)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tLABEL\tCREATED\tLAST USED\tREVOKED")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Label, stamp(&t.CreatedAt), stamp(t.LastUsedAt), stamp(t.RevokedAt))
	}
	return w.Flush()
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
