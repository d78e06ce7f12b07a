/* Shim for Wine < 9: provides bcryptprimitives.dll!ProcessPrng, which Rust's
 * std (1.78+) imports on Windows, by forwarding to advapi32!SystemFunction036
 * (RtlGenRandom). Build:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID RandomBuffer, ULONG RandomBufferLength);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
{
    while (cbData > 0) {
        ULONG n = cbData > 0x40000000 ? 0x40000000 : (ULONG)cbData;
        if (!SystemFunction036(pbData, n))
            return FALSE;
        pbData += n;
        cbData -= n;
    }
    return TRUE;
}
