// Package deploy holds the deployment files (Dockerfile, compose file,
// systemd unit, Prometheus rules) and, in its tests, the checks that keep
// them valid. It has no code of its own and must never be imported.
package deploy
