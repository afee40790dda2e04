// Package service installs and runs the agent as a Windows service: the
// service manager starts `edgesync agent service run` at boot, stops it with
// a service-control stop, and the agent logs to the Windows event log. The
// configuration (relays, join token) is kept in service.json in the
// agent's state directory, under %ProgramData%\edgesync, so neither the
// token nor the relay list appear in the service's command line.
//
// On Linux the agent runs under systemd instead; the functions here report
// ErrUnsupported there.
package service
