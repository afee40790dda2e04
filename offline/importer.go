package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Report is the outcome of verifying or importing one medium; it is written
// as results/result.json.
type Report struct {
	Source   string         `json:"source"`
	Server   string         `json:"server,omitempty"`
	KitID    string         `json:"kit_id,omitempty"`
	DryRun   bool           `json:"dry_run,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Bytes    int64          `json:"bytes"`
	Counts   map[string]int `json:"counts"`
	Records  []RecordResult `json:"records"`
}

// Rejected is the number of rejected records and entries.
func (r *Report) Rejected() int { return r.Counts[OutcomeRejected] }

func (r *Report) add(res ...RecordResult) {
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	for _, x := range res {
		r.Counts[x.Outcome]++
	}
	r.Records = append(r.Records, res...)
}

// ImportConfig drives Import.
type ImportConfig struct {
	Server     string       // admin API base URL of a relay or central
	Token      string       // admin token
	HTTP       *http.Client // nil: http.DefaultClient
	DryRun     bool
	Strict     bool
	Progress   io.Writer // progress bar; nil for none
	StagingDir string    // parent of the archive staging dir
	Limits     Limits
	BatchBytes int // request size target; 0 = 4 MiB
}

// Import sends every sealed record of the medium at src to the server and
// writes the result files (not on a dry run). The server verifies and
// decides; the report carries its answer per record. Records refused while
// reading the medium are reported as rejected too.
func Import(ctx context.Context, src string, cfg ImportConfig) (*Report, error) {
	m, err := OpenMedium(src, cfg.StagingDir, cfg.Limits)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if m.Kit == nil {
		return nil, fmt.Errorf("%w: %s has no %s", ErrKit, src, KitFile)
	}
	kit, err := ParseKit(m.Kit, nil)
	if err != nil {
		return nil, err
	}
	rep := &Report{Source: src, Server: cfg.Server, KitID: kit.ID, DryRun: cfg.DryRun, Started: time.Now(), Bytes: m.Bytes}
	for _, r := range m.Rejected {
		rep.add(RecordResult{Name: r.Name, Outcome: OutcomeRejected, Reason: r.Code, Detail: r.Detail, At: rep.Started})
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	batchBytes := cfg.BatchBytes
	if batchBytes <= 0 {
		batchBytes = 4 << 20
	}
	var bar *progressbar.ProgressBar
	if cfg.Progress != nil {
		bar = progressbar.NewOptions64(m.Bytes, progressbar.OptionSetWriter(cfg.Progress), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("importing"), progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(cfg.Progress) }))
	}
	req := ImportRequest{Kit: json.RawMessage(m.Kit), DryRun: cfg.DryRun, Strict: cfg.Strict}
	size := 0
	flush := func() error {
		if len(req.Records) == 0 {
			return nil
		}
		res, err := postImport(ctx, hc, cfg.Server, cfg.Token, &req)
		if err != nil {
			return err
		}
		rep.add(res...)
		if bar != nil {
			bar.Add(size)
		}
		req.Records, size = req.Records[:0], 0
		return nil
	}
	for _, e := range m.Records {
		data, err := m.Read(e)
		if err != nil {
			rep.add(RecordResult{Name: e.Name, Outcome: OutcomeRejected, Reason: ReasonMalformed, Detail: err.Error(), At: time.Now()})
			continue
		}
		if size+len(data) > batchBytes || len(req.Records) >= MaxRequestRecords {
			if err := flush(); err != nil {
				return rep, err
			}
		}
		req.Records = append(req.Records, ImportItem{Name: e.Name, Data: data})
		size += len(data)
	}
	if err := flush(); err != nil {
		return rep, err
	}
	if bar != nil {
		bar.Finish()
	}
	rep.Finished = time.Now()
	if !cfg.DryRun {
		if err := WriteResults(m.ResultsDir(), rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func postImport(ctx context.Context, hc *http.Client, server, token string, req *ImportRequest) ([]RecordResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(server, "/")+ImportPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("import: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(rb, &e) == nil && e.Code != "" {
			return nil, fmt.Errorf("import: %s: %s (%s)", resp.Status, e.Message, e.Code)
		}
		return nil, fmt.Errorf("import: %s", resp.Status)
	}
	var out ImportResponse
	if err := json.Unmarshal(rb, &out); err != nil {
		return nil, fmt.Errorf("import: decode answer: %w", err)
	}
	if len(out.Results) != len(req.Records) {
		return nil, fmt.Errorf("import: %d results for %d records", len(out.Results), len(req.Records))
	}
	return out.Results, nil
}

// Verify checks every record of the medium at src without a server: hash,
// signature, kit binding and (for unencrypted records) the record schema.
func Verify(src string, lim Limits) (*Report, error) {
	m, err := ScanMedium(src, lim)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if m.Kit == nil {
		return nil, fmt.Errorf("%w: %s has no %s", ErrKit, src, KitFile)
	}
	kit, err := ParseKit(m.Kit, nil)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rep := &Report{Source: src, KitID: kit.ID, Started: now, Bytes: m.Bytes}
	for _, r := range m.Rejected {
		rep.add(RecordResult{Name: r.Name, Outcome: OutcomeRejected, Reason: r.Code, Detail: r.Detail, At: now})
	}
	results := make([]RecordResult, len(m.Records))
	parallel(len(m.Records), func(i int) {
		e := m.Records[i]
		res := RecordResult{Name: e.Name, At: now, Outcome: OutcomeVerified}
		data, err := m.Read(e)
		if err == nil {
			var o *Opened
			if o, err = Open(data, OpenOptions{KitID: kit.ID, KitGen: kit.Generation, Now: now}); err == nil {
				res.DeviceID, res.CollectedAt, res.Hostname = o.Sealed.DeviceID, o.Sealed.CollectedAt, o.Hostname()
				if o.Record == nil {
					res.Warning = "encrypted: schema checked at import"
				}
				if !strings.HasPrefix(e.Name, DataDir+"/"+o.Sealed.DeviceID+"/") {
					err = reject(ReasonHeaderMismatch, "stored under another device's folder")
				}
			}
		}
		if err != nil {
			res.Outcome, res.Reason, res.Detail = OutcomeRejected, ReasonOf(err), err.Error()
			if res.Reason == "" {
				res.Reason = ReasonMalformed
			}
		}
		results[i] = res
	})
	rep.add(results...)
	rep.Finished = time.Now()
	return rep, nil
}

// WriteResults writes result_success.txt, result_failed.txt (only when a
// record failed; a stale one is removed) and result.json into dir, each
// atomically. Lines are the product's "YYYY/MM/DD hh:mm:ss host-name".
func WriteResults(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var ok, failed bytes.Buffer
	recs := slices.Clone(rep.Records)
	slices.SortStableFunc(recs, func(a, b RecordResult) int { return a.At.Compare(b.At) })
	for _, r := range recs {
		host := r.Hostname
		if host == "" {
			host = r.DeviceID
		}
		if host == "" {
			host = r.Name
		}
		line := fmt.Sprintf("%s %s\n", r.At.Local().Format("2006/01/02 15:04:05"), host)
		if r.Outcome == OutcomeRejected {
			failed.WriteString(line)
		} else {
			ok.WriteString(line)
		}
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := replaceFile(filepath.Join(dir, "result_success.txt"), ok.Bytes()); err != nil {
		return err
	}
	fp := filepath.Join(dir, "result_failed.txt")
	if failed.Len() > 0 {
		if err := replaceFile(fp, failed.Bytes()); err != nil {
			return err
		}
	} else if err := os.Remove(fp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return replaceFile(filepath.Join(dir, "result.json"), append(js, '\n'))
}

func replaceFile(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-result-*")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
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
	return os.Rename(tmp.Name(), p)
}
