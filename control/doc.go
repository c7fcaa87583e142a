// Package control is the one way into a running popbridge: the CLI
// subcommands (status, import, fetch, migrate, verify, console) and the web
// console all use the API defined here, and nothing else reaches into the
// backend.
//
// The API is the interface API. It has two implementations:
//
//   - *Service runs inside the process that holds the data dir (serve, or a
//     CLI command that found no running bridge) and calls the backend;
//   - *Client talks to a Service over the control endpoint: HTTP on a
//     loopback port, with the address and a random bearer token in
//     data_dir/control.json (mode 0600), so only the user who runs the
//     bridge can use it.
//
// Implementation notes:
//
//   - A Service outlives the bridge it controls: serve attaches a Runtime
//     (the account and what the configuration built) when the bridge has
//     started and detaches it before a reload. Calls that need the account
//     wait a short while for one to be attached, then fail with a plain
//     explanation.
//   - Long jobs (migrate, verify) run in the Service, not in the request
//     that started them; their state is kept in data_dir (migration.json,
//     verify-report.json) so that progress, the ETA and the last report
//     survive a restart. A migration started from the console that was
//     running when the bridge stopped continues when it starts again.
//   - Live updates are Server-Sent Events. Nothing watches or computes
//     anything while nobody listens: the watcher goroutine runs only while
//     there is a subscriber.
//   - Secrets are write-only: no type in this package carries a password,
//     a token or a password hash back out, except SetDevicePassword's answer,
//     which shows a password the user just generated, once. TLS keys never
//     reach a Runtime: CACertificate hands out the CA certificate only.
//   - Stopping: SetSystem with Quit asks the desktop integration to stop
//     popbridge after the answer is sent. Server.Close ends the open event
//     streams first, so the graceful shutdown does not wait for them.
package control
