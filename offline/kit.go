package offline

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Medium layout (DESIGN.md §9).
const (
	RootDir     = "EDGESYNC"
	KitFile     = "kit.json"
	DataDir     = "Data"
	ResultsDir  = "results"
	BinaryName  = "edgesync"
	SealedExt   = ".esr"
	maxKitBytes = 256 << 10
)

// Kit is what central puts on a collection medium, signed.
type Kit struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	Generation uint64    `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	// CentralKey is central's ed25519 kit-signing public key.
	CentralKey []byte `json:"central_key"`
	// AgeRecipient, when set, is the age X25519 recipient collected
	// records are encrypted to.
	AgeRecipient string   `json:"age_recipient,omitempty"`
	Settings     Settings `json:"settings"`
}

// Settings are the collection settings a kit carries. Changing them bumps
// central's generation; records from older generations are flagged.
type Settings struct {
	CustomFields  []string   `json:"custom_fields,omitempty"`
	FormQuestions []Question `json:"form_questions,omitempty"`
	// SkipSoftware, SkipUsers and SkipNetwork turn collection parts off
	// (the product's /s switch skips the software search).
	SkipSoftware bool `json:"skip_software,omitempty"`
	SkipUsers    bool `json:"skip_users,omitempty"`
	SkipNetwork  bool `json:"skip_network,omitempty"`
}

// Question is one end-user form question; the answer lands in the
// inventory's custom_fields under Key.
type Question struct {
	Key      string `json:"key"`
	Prompt   string `json:"prompt"`
	Required bool   `json:"required,omitempty"`
}

// signedKit is the kit.json file: the kit's exact bytes and central's
// signature over them.
type signedKit struct {
	Format string          `json:"format"`
	Kit    json.RawMessage `json:"kit"`
	Sig    []byte          `json:"sig"`
}

const kitFormat = "edgesync-kit/1"

func kitSigningInput(kit []byte) []byte {
	return append([]byte("edgesync-kit-v1\x00"), kit...)
}

// NewKitID returns a random kit ID.
func NewKitID() string {
	var b [8]byte
	rand.Read(b[:])
	return "kit-" + hex.EncodeToString(b[:])
}

// SignKit returns the kit.json contents for k signed with central's key.
func SignKit(priv ed25519.PrivateKey, k *Kit) ([]byte, error) {
	k.CentralKey = priv.Public().(ed25519.PublicKey)
	body, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(signedKit{Format: kitFormat, Kit: body, Sig: ed25519.Sign(priv, kitSigningInput(body))}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// ParseKit decodes kit.json and checks its signature. With trusted set, the
// kit must be signed by that key; without, by the key it names (a
// self-consistency check that catches corruption and edits, not a forger
// who re-signs: that is what central's check at import is for).
func ParseKit(data []byte, trusted ed25519.PublicKey) (*Kit, error) {
	if len(data) > maxKitBytes {
		return nil, fmt.Errorf("%w: kit.json is %d bytes", ErrKit, len(data))
	}
	var sk signedKit
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sk); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKit, err)
	}
	if sk.Format != kitFormat {
		return nil, fmt.Errorf("%w: format %q", ErrKit, sk.Format)
	}
	var k Kit
	dec = json.NewDecoder(bytes.NewReader(sk.Kit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKit, err)
	}
	if len(k.CentralKey) != ed25519.PublicKeySize || k.ID == "" {
		return nil, fmt.Errorf("%w: missing kit id or central key", ErrKit)
	}
	key := ed25519.PublicKey(k.CentralKey)
	if trusted != nil && !key.Equal(trusted) {
		return nil, fmt.Errorf("%w: signed by another central", ErrKit)
	}
	// The signature covers the compact form, so kit.json may be indented.
	var compact bytes.Buffer
	if err := json.Compact(&compact, sk.Kit); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKit, err)
	}
	if len(sk.Sig) != ed25519.SignatureSize || !ed25519.Verify(key, kitSigningInput(compact.Bytes()), sk.Sig) {
		return nil, fmt.Errorf("%w: signature does not verify", ErrKit)
	}
	return &k, nil
}
