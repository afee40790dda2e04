package offline

import (
	"strings"
	"testing"
)

func TestCheckKitPath(t *testing.T) {
	for _, tc := range []struct {
		name, path, goos string
		wantErr          bool
	}{
		{"windows short", `E:\EDGESYNC`, "windows", false},
		{"windows at the limit", `E:\` + strings.Repeat("a", MaxKitPathWindows-3), "windows", false},
		{"windows over the limit", `E:\` + strings.Repeat("a", MaxKitPathWindows-2), "windows", true},
		// Characters, not bytes: 125 kanji are 375 bytes and still fit.
		{"windows counts characters", `E:\` + strings.Repeat("資", MaxKitPathWindows-3), "windows", false},
		{"linux long but fine", "/media/" + strings.Repeat("a", 500), "linux", false},
		{"linux over the limit", "/" + strings.Repeat("a", MaxKitPath), "linux", true},
		{"control character", "E:\\EDGE\x07SYNC", "windows", true},
		{"control character on linux", "/media/a\nb", "linux", true},
	} {
		err := checkKitPath(tc.path, tc.goos)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: checkKitPath = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if err != nil && err.(*ExitError).Code != ExitPathTooLong {
			t.Errorf("%s: exit code %d, want %d", tc.name, err.(*ExitError).Code, ExitPathTooLong)
		}
	}
}
