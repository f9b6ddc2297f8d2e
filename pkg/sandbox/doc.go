// Package sandbox owns the student containers: it creates one hardened Docker
// container per active REPL (plus at most one warm spare per connected user),
// streams its TTY, enforces the CPU, wall-clock and idle limits from the server
// side, tells exit reasons apart and removes every container it created.
//
// It must never: mount the Docker socket or any host system path, create a
// container whose HostConfig fails Validate, run a container as root, use
// `Binds` strings, forward user input before the runner has its control line,
// or touch a container that carries no `pyide.managed=true` label.
package sandbox
