/* Wine 8 (Debian bookworm) lacks ProcessPrng, which Go >= 1.22 Windows
 * binaries import from bcryptprimitives.dll to read random bytes. This shim
 * exports it over BCryptGenRandom with the system-preferred RNG; the test
 * installs it into the Wine prefix's system32 and selects it with
 * WINEDLLOVERRIDES=bcryptprimitives=n. Not shipped: real Windows has it. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
	while (len > 0) {
		ULONG n = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
		if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
