//go:build windows

package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// controlTimeout bounds waiting for the service manager to report a state.
const controlTimeout = 60 * time.Second

// Install registers the service to start exe at boot with the given state
// dir, writes the configuration there and registers the event-log source.
// Installing over an existing service updates its configuration.
func Install(exe, stateDir string, c Config) error {
	if err := SaveConfig(stateDir, c); err != nil {
		return err
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	args := []string{"agent", "service", "run", "--service", "--state", stateDir}
	s, err := m.OpenService(Name)
	if err == nil {
		defer s.Close()
		// Only the command line and start type change; ChangeServiceConfig
		// directly, because mgr's Config/UpdateConfig also read and write the
		// optional config2 parts, which some service managers (Wine) refuse.
		cmd, err := windows.UTF16PtrFromString(commandLine(exe, args))
		if err != nil {
			return err
		}
		if err := windows.ChangeServiceConfig(s.Handle, windows.SERVICE_NO_CHANGE, mgr.StartAutomatic, windows.SERVICE_NO_CHANGE,
			cmd, nil, nil, nil, nil, nil, nil); err != nil {
			return fmt.Errorf("update service %s: %w", Name, err)
		}
	} else {
		s, err = m.CreateService(Name, exe, mgr.Config{
			DisplayName: DisplayName, Description: Description, StartType: mgr.StartAutomatic,
		}, args...)
		if err != nil {
			return fmt.Errorf("create service %s: %w", Name, err)
		}
		defer s.Close()
	}
	// Restart after a crash: 5 s, then 30 s, then every 5 min.
	_ = s.SetRecoveryActions([]mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 5 * time.Minute},
	}, 24*60*60)
	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil &&
		!strings.Contains(err.Error(), "exists") {
		return fmt.Errorf("register event source %s: %w", Name, err)
	}
	return nil
}

// commandLine quotes like CreateService does.
func commandLine(exe string, args []string) string {
	parts := []string{windows.EscapeArg(exe)}
	for _, a := range args {
		parts = append(parts, windows.EscapeArg(a))
	}
	return strings.Join(parts, " ")
}

// Uninstall stops the service if it runs and removes it and its event
// source. The state dir (device ID, spool) stays, so a reinstall keeps the
// device's identity.
func Uninstall() error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return fmt.Errorf("service %s is not installed", Name)
	}
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := stop(s); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", Name, err)
	}
	_ = eventlog.Remove(Name)
	return nil
}

func open() (*mgr.Mgr, *mgr.Service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the service manager: %w", err)
	}
	s, err := m.OpenService(Name)
	if err != nil {
		m.Disconnect()
		return nil, nil, fmt.Errorf("service %s is not installed", Name)
	}
	return m, s, nil
}

// Start starts the service and waits until it runs.
func Start() error {
	m, s, err := open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Name, err)
	}
	return waitState(s, svc.Running)
}

// Stop sends a stop control and waits until the service has stopped.
func Stop() error {
	m, s, err := open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	return stop(s)
}

func stop(s *mgr.Service) error {
	if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fmt.Errorf("stop %s: %w", Name, err)
	}
	return waitState(s, svc.Stopped)
}

func waitState(s *mgr.Service, want svc.State) error {
	deadline := time.Now().Add(controlTimeout)
	for {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("query %s: %w", Name, err)
		}
		if st.State == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %s after %s, want %s", Name, stateName(st.State), controlTimeout, stateName(want))
		}
		time.Sleep(200 * time.Millisecond) // polling the service manager; it has no change notification we can wait on here
	}
}

// Status reports whether the service is installed and its state.
func Status() (State, error) {
	m, err := mgr.Connect()
	if err != nil {
		return State{}, fmt.Errorf("connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return State{Installed: false}, nil
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return State{Installed: true}, fmt.Errorf("query %s: %w", Name, err)
	}
	out := State{Installed: true, State: stateName(st.State), PID: st.ProcessId}
	if cmd, start, err := basicConfig(s); err == nil {
		out.Command, out.StartType = cmd, startName(start)
	}
	return out, nil
}

// basicConfig reads the command line and start type with QueryServiceConfig
// alone (see Install for why not mgr's Config).
func basicConfig(s *mgr.Service) (string, uint32, error) {
	var need uint32 = 1024
	for {
		buf := make([]byte, need)
		p := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
		err := windows.QueryServiceConfig(s.Handle, p, need, &need)
		if err == nil {
			return windows.UTF16PtrToString(p.BinaryPathName), p.StartType, nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || need > 1<<20 {
			return "", 0, fmt.Errorf("query config of %s: %w", Name, err)
		}
	}
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "start-pending"
	case svc.StopPending:
		return "stop-pending"
	case svc.Running:
		return "running"
	case svc.ContinuePending:
		return "continue-pending"
	case svc.PausePending:
		return "pause-pending"
	case svc.Paused:
		return "paused"
	}
	return fmt.Sprintf("state-%d", s)
}

func startName(t uint32) string {
	switch t {
	case mgr.StartAutomatic:
		return "automatic"
	case mgr.StartManual:
		return "manual"
	case mgr.StartDisabled:
		return "disabled"
	}
	return fmt.Sprint(t)
}

// IsService reports whether the service manager started this process.
func IsService() bool {
	ok, err := svc.IsWindowsService()
	return err == nil && ok
}

// RunService runs run under the service manager until a stop or shutdown
// control cancels its context; logs go to the Windows event log.
func RunService(run func(ctx context.Context, log *slog.Logger) error) error {
	elog, err := eventlog.Open(Name)
	if err != nil {
		return fmt.Errorf("open event log: %w", err)
	}
	defer elog.Close()
	log := slog.New(&eventHandler{elog: elog, level: slog.LevelInfo})
	err = svc.Run(Name, &handler{run: run, log: log})
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		return ErrNotService
	}
	return err
}

type handler struct {
	run func(ctx context.Context, log *slog.Logger) error
	log *slog.Logger
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, h.log) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	h.log.Info("Agent service started")
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				h.log.Error("Agent stopped", "err", err)
				return true, 1
			}
			h.log.Info("Agent service stopped")
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(controlTimeout / time.Millisecond)}
				cancel() // the agent finishes the record in hand; the select above returns
			}
		}
	}
}

// eventHandler writes slog records to the Windows event log, one entry per
// record, with the attributes as key=value after the message.
type eventHandler struct {
	elog  *eventlog.Log
	level slog.Level
	attrs []slog.Attr
	mu    sync.Mutex
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	t := slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
			return slog.Attr{} // the event log stamps both
		}
		return a
	}})
	if err := t.WithAttrs(h.attrs).Handle(context.Background(), r); err != nil {
		return err
	}
	msg := strings.TrimSpace(b.String())
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		return h.elog.Error(3, msg)
	case r.Level >= slog.LevelWarn:
		return h.elog.Warning(2, msg)
	}
	return h.elog.Info(1, msg)
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{elog: h.elog, level: h.level, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *eventHandler) WithGroup(string) slog.Handler { return h }
