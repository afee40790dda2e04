package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/blobstore"
)

// Task execution (DESIGN.md §2 flows 3 and 4). An agent asks its relays for
// pending tasks, downloads the package blob (failing over between relay
// nodes and resuming mid-file with HTTP Range), verifies its SHA-256, then
// places the file (type file) or runs the install command with a timeout
// (type install), and reports each status as a task_status record.

// Task statuses and failure causes agents report.
const (
	TaskDownloading = "downloading"
	TaskDownloaded  = "downloaded"
	TaskInstalling  = "installing"
	TaskSuccessful  = "successful"
	TaskFailed      = "failed"

	CauseDiskSpace      = "disk_space"
	CauseFileAccess     = "file_access"
	CauseInternal       = "internal"
	CauseCommandStart   = "command_start"
	CauseCommandStopped = "command_stopped"
	CauseCommandExit    = "command_exit"
)

// DefaultTaskTimeout bounds an install command.
const DefaultTaskTimeout = 30 * time.Minute

// taskPoll is how often the agent asks for tasks.
const taskPoll = 30 * time.Second

func statusPayload(task, status, cause, msg string) json.RawMessage {
	b, _ := json.Marshal(record.TaskStatus{TaskID: task, Status: status, Cause: cause, Message: msg})
	return b
}

// downloadVerified downloads a blob into w (from offset) and checks that the
// hash over prefix+downloaded bytes is the package's.
func downloadVerified(ctx context.Context, c *api.Client, dev, tok string, p api.TaskPackage, prefix io.Reader, w io.Writer) (api.DownloadStats, error) {
	h := sha256.New()
	var off int64
	if prefix != nil {
		n, err := io.Copy(h, prefix)
		if err != nil {
			return api.DownloadStats{}, err
		}
		off = n
	}
	var out io.Writer = h
	if w != nil {
		out = io.MultiWriter(w, h)
	}
	st, err := c.Download(ctx, dev, tok, p.SHA256, off, p.Size, out)
	if err != nil {
		return st, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return st, fmt.Errorf("package %s: downloaded bytes hash to %s, want %s", p.ID, got, p.SHA256)
	}
	return st, nil
}

// ---- the agent ----

// taskState is what the agent remembers of tasks it ran: task → attempt.
type taskState map[string]int

func (a *Agent) loadTaskState() taskState {
	st := taskState{}
	if b, err := os.ReadFile(filepath.Join(a.cfg.StateDir, "tasks.json")); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func (a *Agent) saveTaskState(st taskState) error {
	b, _ := json.Marshal(st)
	return writeFileAtomic(filepath.Join(a.cfg.StateDir, "tasks.json"), b, 0o600)
}

// runTasks asks once for pending tasks and executes the new ones. It runs on
// Run's goroutine, so status records go straight into the spool.
func (a *Agent) runTasks(ctx context.Context) {
	list, err := a.client.Tasks(ctx, a.deviceID, a.id.DeviceToken, 0, 0)
	if err != nil {
		if !errors.Is(err, api.ErrInvalidRequest) {
			a.log.DebugContext(ctx, "Tasks not fetched", slog.Any("error", err))
		}
		return
	}
	st := a.loadTaskState()
	for _, t := range list.Tasks {
		if at, ok := st[t.ID]; (ok && at >= t.Attempt) || (!t.At.IsZero() && time.Now().Before(t.At)) {
			continue
		}
		a.executeTask(ctx, t)
		if ctx.Err() != nil {
			return
		}
		st[t.ID] = t.Attempt
		if err := a.saveTaskState(st); err != nil {
			a.log.ErrorContext(ctx, "Task state not saved", slog.Any("error", err))
		}
		_ = a.flush(ctx)
	}
}

func (a *Agent) report(ctx context.Context, task, status, cause, msg string) {
	if err := a.spoolRecord(record.KindTaskStatus, statusPayload(task, status, cause, msg)); err != nil {
		a.log.ErrorContext(ctx, "Task status not spooled", slog.String("task", task), slog.Any("error", err))
	}
}

// executeTask downloads (resuming a partial file kept in the state dir),
// verifies and applies one task.
func (a *Agent) executeTask(ctx context.Context, t api.Task) {
	p := t.Package
	log := a.log.With(slog.String("task", t.ID), slog.String("package", p.ID))
	if !blobstore.ValidSum(p.SHA256) {
		// The hash names a file under the state dir: never let a relay's
		// answer pick a path (../ or a separator) there.
		a.report(ctx, t.ID, TaskFailed, CauseFileAccess, fmt.Sprintf("package hash %q is not a SHA-256", p.SHA256))
		return
	}
	a.report(ctx, t.ID, TaskDownloading, "", "")
	_ = a.flush(ctx)
	dir := filepath.Join(a.cfg.StateDir, "downloads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		a.report(ctx, t.ID, TaskFailed, CauseFileAccess, err.Error())
		return
	}
	path := filepath.Join(dir, p.SHA256)
	f, err := os.OpenFile(path+".part", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		a.report(ctx, t.ID, TaskFailed, CauseFileAccess, err.Error())
		return
	}
	_, err = downloadVerified(ctx, a.client, a.deviceID, a.id.DeviceToken, p, f, f)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		os.Remove(path + ".part")
		cause := CauseInternal
		if errors.Is(err, syscall.ENOSPC) {
			cause = CauseDiskSpace
		}
		log.WarnContext(ctx, "Package download failed", slog.Any("error", err))
		a.report(ctx, t.ID, TaskFailed, cause, err.Error())
		return
	}
	if err := os.Rename(path+".part", path); err != nil {
		a.report(ctx, t.ID, TaskFailed, CauseFileAccess, err.Error())
		return
	}
	defer os.Remove(path)
	a.report(ctx, t.ID, TaskDownloaded, "", "")
	switch p.Type {
	case "file":
		dst := filepath.Join(p.Dest, p.FileName)
		if err := placeFile(path, dst, fileMode(p.Mode)); err != nil {
			a.report(ctx, t.ID, TaskFailed, CauseFileAccess, err.Error())
			return
		}
		log.InfoContext(ctx, "Package file placed", slog.String("path", dst))
	default:
		a.report(ctx, t.ID, TaskInstalling, "", "")
		_ = a.flush(ctx)
		if cause, err := a.install(ctx, p, path); err != nil {
			log.WarnContext(ctx, "Install failed", slog.Any("error", err))
			a.report(ctx, t.ID, TaskFailed, cause, err.Error())
			return
		}
	}
	a.report(ctx, t.ID, TaskSuccessful, "", "")
}

// DefaultFileMode is the mode of a placed file whose package declares none.
const DefaultFileMode os.FileMode = 0o644

// fileMode parses a package's octal mode ("0755"); empty or invalid (central
// validates it) is DefaultFileMode.
func fileMode(s string) os.FileMode {
	m, err := strconv.ParseUint(s, 8, 32)
	if s == "" || err != nil || m > 0o777 {
		return DefaultFileMode
	}
	return os.FileMode(m)
}

// placeFile copies src to dst with mode through a temporary file and a
// rename (the temporary file is created 0600, then set to mode).
func placeFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".edgesync-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// install runs the package command with the file in EDGESYNC_PACKAGE_FILE.
func (a *Agent) install(ctx context.Context, p api.TaskPackage, path string) (string, error) {
	timeout := a.cfg.TaskTimeout
	if timeout <= 0 {
		timeout = DefaultTaskTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", p.Command)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(os.Environ(), "EDGESYNC_PACKAGE_FILE="+path, "EDGESYNC_PACKAGE="+p.ID)
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return "", nil
	case cctx.Err() != nil:
		return CauseCommandStopped, fmt.Errorf("command stopped after %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return CauseCommandExit, fmt.Errorf("command exited %d: %.200s", ee.ExitCode(), out)
	}
	return CauseCommandStart, err
}

// ---- the simulator ----

// SimDevice is an enrolled simulated device.
type SimDevice struct {
	ID      string
	Token   string
	NextSeq uint64
}

// SimTaskStats counts simulated task execution.
type SimTaskStats struct {
	TasksDone      uint64 `json:"tasks_done"`
	TasksFailed    uint64 `json:"tasks_failed"`
	DownloadBytes  uint64 `json:"download_bytes"`
	DownloadResume uint64 `json:"download_resumes"`
}

type simTaskCounters struct {
	done, failed, bytes, resumes atomic.Uint64
}

func (c *simTaskCounters) snapshot() SimTaskStats {
	return SimTaskStats{TasksDone: c.done.Load(), TasksFailed: c.failed.Load(), DownloadBytes: c.bytes.Load(), DownloadResume: c.resumes.Load()}
}

// runTasks makes one simulated device execute cfg.Tasks tasks: download and
// verify (the bytes are discarded), then report downloaded and successful.
func (s *sim) runTasks(ctx context.Context, client *api.Client, d SimDevice) error {
	seq := d.NextSeq
	report := func(task, status, cause, msg string) error {
		rec := record.Record{DeviceID: d.ID, Seq: seq, Kind: record.KindTaskStatus, CollectedAt: s.cfg.Now(),
			Schema: record.SchemaVersion, Payload: statusPayload(task, status, cause, msg)}
		err := s.retry(ctx, func() error {
			_, err := client.Report(ctx, d.ID, d.Token, []record.Record{rec})
			return err
		})
		if err == nil {
			seq++
		}
		return err
	}
	done := map[string]int{}
	since := uint64(0)
	for finished := 0; finished < s.cfg.Tasks; {
		var list api.TaskList
		if err := s.retry(ctx, func() error {
			var err error
			list, err = client.Tasks(ctx, d.ID, d.Token, since, 10*time.Second)
			return err
		}); err != nil {
			return fmt.Errorf("simulated device %s: tasks: %w", d.ID, err)
		}
		since = list.Version
		for _, t := range list.Tasks {
			if at, ok := done[t.ID]; (ok && at >= t.Attempt) || (!t.At.IsZero() && time.Now().Before(t.At)) {
				continue
			}
			if err := report(t.ID, TaskDownloading, "", ""); err != nil {
				return err
			}
			st, err := downloadVerified(ctx, client, d.ID, d.Token, t.Package, nil, nil)
			s.tstats.bytes.Add(uint64(st.Bytes))
			s.tstats.resumes.Add(uint64(st.Resumed))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				s.tstats.failed.Add(1)
				if err := report(t.ID, TaskFailed, CauseInternal, err.Error()); err != nil {
					return err
				}
			} else {
				s.tstats.done.Add(1)
				if err := report(t.ID, TaskDownloaded, "", ""); err != nil {
					return err
				}
				if err := report(t.ID, TaskSuccessful, "", ""); err != nil {
					return err
				}
			}
			done[t.ID] = t.Attempt
			finished++
		}
	}
	return nil
}
