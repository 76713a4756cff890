using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Runtime;

/// <summary>One place that initialises libtorch: thread count, seed, device. Turns loader failures into one clear message.</summary>
public static class TorchRuntime
{
    static readonly object Gate = new();
    static bool _loaded;

    /// <summary>Runs when WeakSeg.Core is first touched, before any of its code can create a tensor: hooks libtorch's
    /// loading so the MKL vendor override (<see cref="MklVendorOverride"/>) lands before MKL's first call, whichever
    /// command, test or library caller uses torch first. Loads nothing by itself.</summary>
#pragma warning disable CA2255 // a library module initializer is deliberate: the hook must precede the first libtorch call
    [ModuleInitializer]
    internal static void HookNativeLoad() => MklVendorOverride.Install();
#pragma warning restore CA2255

    /// <summary>Loads libtorch (once) and returns the requested device. Throws <see cref="WeakSegException"/> with the loader's reason.</summary>
    public static Device Initialize(string device = "cpu", int threads = 0)
    {
        EnsureLoaded();
        if (threads > 0) torch.set_num_threads(threads);
        var d = device.Trim().ToLowerInvariant();
        if (d.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new WeakSegException($"--device {device}: CUDA is not available in this build (TorchSharp-cpu) or on this machine; use --device cpu.");
            return torch.device(d);
        }
        if (d != "cpu") throw new WeakSegException($"--device {device}: unknown device (expected cpu or cuda[:N]).");
        return torch.CPU;
    }

    /// <summary>Seeds torch and returns a managed RNG seeded the same way (for data order and augmentation).</summary>
    public static Random Seed(long seed)
    {
        EnsureLoaded();
        torch.manual_seed(seed);
        return new Random(unchecked((int)seed));
    }

    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            MklVendorOverride.IsEnabledByEnvironment();   // a bad WEAKSEG_MKL_VENDOR_OVERRIDE value is one error line
            OneDnnConvolutionCheck.Mode();                // a bad WEAKSEG_ONEDNN_CONV value too
            if (!MklVendorOverride.Install()) MklVendorOverride.ApplyNow();
            try
            {
                using var t = torch.zeros(1);   // no MKL call: the kernel choice is still open here
                if (MklVendorOverride.Status.State == MklVendorOverrideState.NotLoaded) MklVendorOverride.ApplyNow();
                NnpackSwitch.Apply();            // no NNPACK warning on every convolution where NNPACK cannot run
                OneDnnConvolutionCheck.Apply();  // oneDNN's convolution off where it computes wrong values
                _loaded = true;
            }
            catch (Exception e) when (e is not WeakSegException)
            {
                var inner = e;
                while (inner.InnerException != null) inner = inner.InnerException;
                throw new WeakSegException(
                    "libtorch failed to load: " + inner.Message.Split('\n')[0].Trim() +
                    " — see README 'Troubleshooting' (GLIBCXX_3.4.32 on Debian 12 / Ubuntu 22.04: rebuild so the output copy of libLibTorchSharp.so is patched).", e);
            }
        }
    }
}
