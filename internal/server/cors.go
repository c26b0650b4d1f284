package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/glowhq/glow/internal/problem"
)

// corsPolicy says which other origins' pages may call glow from a browser: over HTTP, and
// over socket.io's long-polling (both are fetches the browser checks); a websocket
// handshake from an origin the policy does not allow is refused too. With no origins, only
// pages of glow's own origin may (browsers need no CORS headers for those).
type corsPolicy struct {
	any     bool            // "*": every origin, without credentials
	origins map[string]bool // scheme://host[:port], exactly as browsers send Origin
}

// corsAllowedHeaders are the request headers a page may send: the token, the body's type,
// an idempotency key, SSE's resume point.
var corsAllowedHeaders = []string{"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"}

// corsExposedHeaders are the response headers a page may read.
const corsExposedHeaders = "Glow-Call-Id, Retry-After, WWW-Authenticate"

// corsMaxAge is how long a browser may keep a preflight's answer, in seconds.
const corsMaxAge = "600"

// parseCORSOrigins reads GLOW_CORS_ORIGINS: a comma-separated list of origins
// (https://app.example.com, http://localhost:5173), or "*".
func parseCORSOrigins(s string) (corsPolicy, error) {
	p := corsPolicy{origins: map[string]bool{}}
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			continue
		case o == "*":
			p.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return corsPolicy{}, fmt.Errorf("cors origin %q is not an origin: want scheme://host[:port], such as https://app.example.com", o)
		}
		p.origins[strings.ToLower(o)] = true
	}
	return p, nil
}

// allows says whether a page of origin may call.
func (p corsPolicy) allows(origin string) bool {
	return p.any || p.origins[strings.ToLower(origin)]
}

// sameOrigin says whether origin is the origin r was sent to.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// wrap applies the policy in front of next.
func (p corsPolicy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || sameOrigin(r, origin) {
			next.ServeHTTP(w, r)
			return
		}
		allowed := p.allows(origin)
		if websocket.IsWebSocketUpgrade(r) {
			if !allowed {
				refuse(w, problem.Forbidden("origin %q may not open a websocket here; see GLOW_CORS_ORIGINS", origin))
				return
			}
			// The websocket library refuses every other origin itself: this one is allowed.
			r = r.Clone(r.Context())
			r.Header.Del("Origin")
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			if !allowed {
				refuse(w, problem.Forbidden("origin %q may not call glow; see GLOW_CORS_ORIGINS", origin))
				return
			}
			p.allow(h, origin)
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			if asked := allowedHeaders(r.Header.Get("Access-Control-Request-Headers")); asked != "" {
				h.Set("Access-Control-Allow-Headers", asked)
			}
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			p.allow(h, origin)
			h.Set("Access-Control-Expose-Headers", corsExposedHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// allow names origin as allowed; a listed origin may send credentials, "*" may not.
func (p corsPolicy) allow(h http.Header, origin string) {
	if p.origins[strings.ToLower(origin)] {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		return
	}
	h.Set("Access-Control-Allow-Origin", "*")
}

// allowedHeaders is what of a preflight's Access-Control-Request-Headers glow accepts.
func allowedHeaders(asked string) string {
	var out []string
	for _, name := range strings.Split(asked, ",") {
		name = strings.TrimSpace(name)
		for _, ok := range corsAllowedHeaders {
			if strings.EqualFold(name, ok) {
				out = append(out, ok)
			}
		}
	}
	return strings.Join(out, ", ")
}

// refuse answers with a problem document.
func refuse(w http.ResponseWriter, p *problem.Problem) {
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
