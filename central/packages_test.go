package central

import "testing"

// TestPackage_ValidateMode: a file package's mode is octal permission bits,
// normalised to four digits; other packages take none.
func TestPackage_ValidateMode(t *testing.T) {
	tests := []struct {
		name, typ, mode, want string
		wantErr               bool
	}{
		{"none", PackageFile, "", "", false},
		{"four digits", PackageFile, "0755", "0755", false},
		{"three digits", PackageFile, "640", "0640", false},
		{"symbolic", PackageFile, "u+x", "", true},
		{"setuid", PackageFile, "4755", "", true},
		{"not octal", PackageFile, "0855", "", true},
		{"install package", PackageInstall, "0755", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Package{Name: "p", Version: "1", Type: tt.typ, Command: "true", Dest: "/opt/p", FileName: "p", Mode: tt.mode}
			err := p.validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("validate() = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && p.Mode != tt.want {
				t.Fatalf("mode %q, want %q", p.Mode, tt.want)
			}
		})
	}
}
