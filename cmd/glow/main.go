// Command glow runs the glow server (glow serve), manages its tokens (glow token …) and
// serves its operations as MCP tools (glow mcp).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/glowhq/glow/internal/server"
)

const usage = `glow — the glow API server and its tools

Usage:
  glow serve [flags]                 run the server (HTTP and socket.io on one address)
  glow token create --profile NAME --role ROLE [--department NAME]… [--label TEXT]
                                     print a new token (creating the profile if needed)
  glow token revoke TOKEN|SESSION_ID revoke a token; its sockets are disconnected
  glow token list --profile NAME     list a profile's tokens
  glow mcp [--url URL] [--token TOKEN]
                                     serve the operations as MCP tools over stdio
  glow login --url URL --token TOKEN keep the server and token for the commands below
  glow <artifact> <operation> [--field value]… [--data JSON|@file|-]
                                     call an operation (glow persona create, glow attempt
                                     chat message, …); "glow <artifact>" lists its operations.
                                     Exit 0 on 2xx, 4 on 4xx, 5 on 5xx, 1 if unreachable
  glow <artifact> generate … --watch follow the run it starts: the text as it streams
  glow attempt chat live [<chat_id>] [--persona <id>]
                                     chat live: lines from stdin are sent, events printed
  glow version, glow --version       print the version

Run "glow serve -h" or "glow token create -h" for the flags. Every flag also reads a
GLOW_* environment variable (named in its help).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr)
	case "token":
		err = token(args[1:], stdout, stderr)
	case "mcp":
		err = mcpServe(args[1:], stderr)
	case "login":
		err = login(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		err = version(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		if len(args) >= 3 && args[0] == "attempt" && args[1] == "chat" && args[2] == "live" {
			err = chatLive(args[3:], os.Stdin, stdout, stderr)
			break
		}
		if !isArtifact(args[0]) {
			fmt.Fprintf(stderr, "glow: unknown command %q\n\n%s", args[0], usage)
			return 2
		}
		op, rest := findOperation(args)
		if op == nil {
			artifactUsage(stderr, args[0])
			return 2
		}
		return callOperation(op, rest, os.Stdin, stdout, stderr)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "glow: %v\n", err)
		return 1
	}
	return 0
}

// errUsage reports a command line that was wrong; the flag package has printed why.
var errUsage = errors.New("usage")

// parse parses flags that may come before, between or after the positional arguments
// (glow token revoke TOKEN --data-dir x). The positional arguments end up in fs.Args().
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts server.Options
	opts.ServeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments (got %q)", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	level, _ := server.ParseLevel(opts.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, opts, log)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		srv.Store.Close()
		return err
	}
	base := "http://" + l.Addr().String()
	if srv.AdminToken != "" {
		fmt.Fprintf(stdout, "glow: the database was empty, so an admin profile was created. Its token (shown once):\n\n    %s\n\n", srv.AdminToken)
	}
	fmt.Fprintf(stdout, "glow: serving on %s (%s database)\n", base, srv.Store.Dialect())
	fmt.Fprintf(stdout, "  HTTP API     POST %s/<artifact>/<op>\n", base)
	fmt.Fprintf(stdout, "  socket.io    %s/socket.io/\n", base)
	fmt.Fprintf(stdout, "  spec         %s/openapi.yaml\n", base)
	fmt.Fprintf(stdout, "  health       curl -s -X POST %s/system/health -H 'Content-Type: application/json' -d '{}'\n", base)
	return srv.Serve(ctx, l)
}

func version(stdout io.Writer) error {
	v, err := server.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "glow %s\n", v)
	return nil
}
