using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace WeakSeg.Runtime;

/// <summary>What the MKL vendor override did in this process.</summary>
public enum MklVendorOverrideState
{
    /// <summary>libtorch has not been loaded yet, so nothing was decided.</summary>
    NotLoaded,
    /// <summary>MKL's vendor check was patched to report an Intel CPU: MKL dispatches on the CPU's real instruction set.</summary>
    Active,
    /// <summary><see cref="MklVendorOverride.EnvironmentVariable"/> turned it off.</summary>
    DisabledByEnvironment,
    /// <summary>The CPU is an Intel CPU: MKL already picks its fast kernels.</summary>
    NotNeededOnIntel,
    /// <summary>Not an x86-64 Linux process (MKL's vendor check only exists there in this form).</summary>
    NotApplicable,
    /// <summary>The loaded libtorch does not export <c>mkl_serv_intel_cpu_true</c> (e.g. a build without MKL).</summary>
    SymbolNotExported,
    /// <summary>The operating system refused to make the code page writable (hardened kernels).</summary>
    Failed,
}

/// <summary>Outcome of the override: the state, the CPU's CPUID vendor string and a one-line explanation.</summary>
public sealed record MklVendorOverrideStatus(MklVendorOverrideState State, string CpuVendor, string Detail)
{
    public bool IsActive => State == MklVendorOverrideState.Active;
}

/// <summary>
/// Makes libtorch's bundled MKL use the CPU's real vector width on x86-64 CPUs that are not Intel's (AMD, Hygon, ...).
/// <para>
/// libtorch links Intel MKL statically. MKL decides which GEMM/convolution kernels to run from
/// <c>mkl_serv_intel_cpu_true()</c>: when the CPUID vendor is not "GenuineIntel" it returns 0 and MKL falls back to its
/// generic SSE2 kernels, whatever AVX2/AVX-512 units the CPU has (on a 2-core AMD EPYC: 1024³ SGEMM 111 → 254 GFLOP/s per
/// core, the MCTformer-V2 training step 1.8× faster). <c>libtorch_cpu.so</c> exports that function and its internal callers
/// go through the PLT, which is why an LD_PRELOAD shim returning 1 works.
/// </para>
/// <para>
/// WeakSeg does the equivalent without a shared object, so it works from a fresh clone with no C compiler: it looks the
/// function up with dlsym in the libtorch that TorchSharp is about to use, and overwrites its first six bytes in this
/// process's memory with <c>mov eax, 1; ret</c> (mprotect to writable, write, mprotect back to read+execute). Patching the
/// function body (rather than interposing a symbol) also covers calls from inside libtorch that bypass the PLT, and needs
/// nothing to be loaded before the .NET runtime starts. The file on disk is never changed (the page is copy-on-write).
/// </para>
/// <para>
/// MKL detects the CPU once, at its first BLAS/DNN call, and caches the kernel choice; so the patch must land before the
/// first tensor operation. <see cref="Install"/> registers a DllImport resolver for the TorchSharp assembly: the first
/// P/Invoke into LibTorchSharp (which precedes any MKL call) loads the library the way TorchSharp does, patches, and
/// returns the handle. WeakSeg's module initializer calls <see cref="Install"/>, so every entry point that touches WeakSeg
/// before torch gets it; <see cref="TorchRuntime.EnsureLoaded"/> calls it again for safety.
/// </para>
/// Turn it off with <c>WEAKSEG_MKL_VENDOR_OVERRIDE=0</c> (e.g. to compare, or when bitwise identity with a run on an
/// unpatched libtorch matters more than speed; results agree to float rounding either way).
/// </summary>
public static class MklVendorOverride
{
    public const string EnvironmentVariable = "WEAKSEG_MKL_VENDOR_OVERRIDE";
    public const string VendorCheckSymbol = "mkl_serv_intel_cpu_true";
    const string CpuDetectSymbol = "mkl_serv_cpu_detect";
    const string TorchSharpNativeLibrary = "LibTorchSharp";

    /// <summary><c>mov eax, 1</c> (B8 imm32) then <c>ret</c> (C3): the function returns 1 ("Intel CPU").</summary>
    static readonly byte[] ReturnOne = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];

    static readonly object Gate = new();
    static bool _resolverInstalled;
    static bool _resolving;
    static IntPtr _libraryHandle;
    static MklVendorOverrideStatus _status = new(MklVendorOverrideState.NotLoaded, CpuVendorString(), "libtorch not loaded yet");

    /// <summary>The outcome so far (<see cref="MklVendorOverrideState.NotLoaded"/> until libtorch is loaded).</summary>
    public static MklVendorOverrideStatus Status
    {
        get { lock (Gate) return _status; }
    }

    /// <summary>Registers the load hook on the TorchSharp assembly (idempotent, cheap: nothing is loaded until torch is used).
    /// Returns false when another component already owns TorchSharp's DllImport resolver; then
    /// <see cref="ApplyNow"/> must run before the first tensor operation instead.</summary>
    public static bool Install()
    {
        lock (Gate)
        {
            if (_resolverInstalled) return true;
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
                _resolverInstalled = true;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
            return true;
        }
    }

    /// <summary>Loads LibTorchSharp (and with it libtorch) the way TorchSharp does and applies the override if it has not
    /// been decided yet. Safe to call repeatedly.</summary>
    public static MklVendorOverrideStatus ApplyNow()
    {
        lock (Gate)
        {
            if (_status.State != MklVendorOverrideState.NotLoaded) return _status;
            if (NativeLibrary.TryLoad(TorchSharpNativeLibrary, typeof(torch).Assembly, null, out var handle))
                ApplyLocked(handle);
            return _status;
        }
    }

    static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != TorchSharpNativeLibrary) return IntPtr.Zero;
        lock (Gate)
        {
            if (_libraryHandle != IntPtr.Zero) return _libraryHandle;
            if (_resolving) return IntPtr.Zero;   // re-entry from the load below: let the runtime probe as usual
            _resolving = true;
            try
            {
                if (!NativeLibrary.TryLoad(libraryName, assembly, searchPath, out var handle)) return IntPtr.Zero;   // TorchSharp reports the failure
                if (_status.State == MklVendorOverrideState.NotLoaded) ApplyLocked(handle);
                _libraryHandle = handle;
                return handle;
            }
            finally
            {
                _resolving = false;
            }
        }
    }

    /// <summary>Whether <see cref="EnvironmentVariable"/> leaves the override on (unset, 1, on, true) or turns it off (0, off,
    /// false). Throws <see cref="WeakSegException"/> for a value that is neither.</summary>
    public static bool IsEnabledByEnvironment()
    {
        var raw = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(raw)) return true;
        return raw.Trim().ToLowerInvariant() switch
        {
            "1" or "on" or "true" or "yes" or "auto" => true,
            "0" or "off" or "false" or "no" => false,
            _ => throw new WeakSegException($"{EnvironmentVariable}={raw}: expected 0 (off) or 1 (on, the default)."),
        };
    }

    static void ApplyLocked(IntPtr libraryHandle)
    {
        _libraryHandle = libraryHandle;
        var vendor = CpuVendorString();
        bool enabled;
        try
        {
            enabled = IsEnabledByEnvironment();
        }
        catch (WeakSegException e)
        {
            // Not applied; TorchRuntime.EnsureLoaded reports the bad value as an error line.
            _status = new(MklVendorOverrideState.DisabledByEnvironment, vendor, e.Message);
            return;
        }
        if (!enabled)
        {
            _status = new(MklVendorOverrideState.DisabledByEnvironment, vendor, $"turned off by {EnvironmentVariable}=0");
            return;
        }
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64 || !OperatingSystem.IsLinux() || !X86Base.IsSupported)
        {
            _status = new(MklVendorOverrideState.NotApplicable, vendor, $"not needed on {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}");
            return;
        }
        if (vendor == "GenuineIntel")
        {
            _status = new(MklVendorOverrideState.NotNeededOnIntel, vendor, "Intel CPU: MKL already uses its fast kernels");
            return;
        }
        if (!NativeLibrary.TryGetExport(libraryHandle, VendorCheckSymbol, out var function))
        {
            _status = new(MklVendorOverrideState.SymbolNotExported, vendor, $"this libtorch does not export {VendorCheckSymbol}");
            return;
        }
        _status = Patch(function, vendor);
    }

    /// <summary>Overwrites the function's entry with <see cref="ReturnOne"/> and checks that it now returns 1.</summary>
    static unsafe MklVendorOverrideStatus Patch(IntPtr function, string vendor)
    {
        long pageSize = Environment.SystemPageSize;
        long start = function.ToInt64() & ~(pageSize - 1);
        long length = function.ToInt64() + ReturnOne.Length - start;   // may straddle two pages
        const int read = 1, write = 2, exec = 4;
        // Read+write+execute while writing, so that other code on the same page stays runnable; kernels that forbid
        // writable executable mappings get read+write for the few instructions of the copy (no MKL code runs yet).
        bool writable = Mprotect((IntPtr)start, (nuint)length, read | write | exec) == 0
                        || Mprotect((IntPtr)start, (nuint)length, read | write) == 0;
        if (!writable)
            return new(MklVendorOverrideState.Failed, vendor, $"mprotect refused to make {VendorCheckSymbol} writable (errno {Marshal.GetLastPInvokeError()})");
        Marshal.Copy(ReturnOne, 0, function, ReturnOne.Length);
        if (Mprotect((IntPtr)start, (nuint)length, read | exec) != 0)
            return new(MklVendorOverrideState.Failed, vendor, $"mprotect could not restore read+execute (errno {Marshal.GetLastPInvokeError()})");
        int result = ((delegate* unmanaged<int>)function)();
        return result == 1
            ? new(MklVendorOverrideState.Active, vendor, $"{VendorCheckSymbol} patched to return 1: MKL uses this CPU's AVX2/AVX-512 kernels")
            : new(MklVendorOverrideState.Failed, vendor, $"{VendorCheckSymbol} still returns {result} after patching");
    }

    /// <summary>MKL's CPU dispatch level (<c>mkl_serv_cpu_detect()</c>: 0 is MKL's generic path, higher values are wider
    /// instruction sets), or null when libtorch is not loaded or has no MKL. MKL caches this at its first call, so a 0
    /// on an AVX2 machine with <see cref="MklVendorOverrideState.Active"/> would mean the patch came too late.</summary>
    public static unsafe int? MklCpuDispatchLevel()
    {
        IntPtr handle;
        lock (Gate) handle = _libraryHandle;
        if (handle == IntPtr.Zero || !NativeLibrary.TryGetExport(handle, CpuDetectSymbol, out var detect)) return null;
        return ((delegate* unmanaged<int>)detect)();
    }

    /// <summary>The 12-character CPUID vendor string ("GenuineIntel", "AuthenticAMD", ...), or the architecture name off x86.</summary>
    public static string CpuVendorString()
    {
        if (!X86Base.IsSupported) return RuntimeInformation.ProcessArchitecture.ToString();
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> bytes = stackalloc byte[12];
        BitConverter.TryWriteBytes(bytes[..4], ebx);
        BitConverter.TryWriteBytes(bytes[4..8], edx);
        BitConverter.TryWriteBytes(bytes[8..], ecx);
        return System.Text.Encoding.ASCII.GetString(bytes);
    }

    [DllImport("libc.so.6", EntryPoint = "mprotect", SetLastError = true)]
    static extern int Mprotect(IntPtr address, nuint length, int protection);
}
