using System.Runtime.CompilerServices;
using WeakSeg.Runtime;

namespace WeakSeg.Tests.Runtime;

/// <summary>The test host goes through the same runtime initialisation as the CLI before any test can create a tensor:
/// libtorch's loading is hooked so the MKL vendor override (and its speed-up) applies to the whole test run, and libtorch
/// is loaded through <see cref="TorchRuntime.EnsureLoaded"/> so its checks (NNPACK, oneDNN convolution) have run before
/// the first test's convolution.</summary>
static class TestHostRuntime
{
#pragma warning disable CA2255 // deliberate: must run before the first test touches torch
    [ModuleInitializer]
    internal static void HookTorchLoad()
    {
        MklVendorOverride.Install();
        try
        {
            TorchRuntime.EnsureLoaded();
        }
        catch (WeakSegException)
        {
            // libtorch cannot load here: the tests that need it fail one by one with the loader's message
        }
    }
#pragma warning restore CA2255
}
