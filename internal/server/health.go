package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// readyTimeout is how long /readyz waits for the database to answer.
const readyTimeout = 2 * time.Second

// serveHealth answers a load balancer or an orchestrator, without a token:
//
//	GET /healthz  200 {"status":"ok"} while the process serves
//	GET /readyz   200 {"status":"ready"} while the database (and, in a cluster, Redis)
//	              answers within readyTimeout; 503 {"status":"unavailable","reason":
//	              "database" or "redis"} otherwise
func (s *Server) serveHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.Store.Ping(ctx); err != nil {
			s.log.Warn("readiness: the database does not answer", "err", err)
			writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database"})
			return
		}
		if s.Bus != nil {
			if err := s.Bus.Ping(ctx); err != nil {
				s.log.Warn("readiness: redis does not answer", "err", err)
				writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "redis"})
				return
			}
		}
		writeStatus(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

func writeStatus(w http.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
