using TorchSharp;

namespace WeakSeg.Runtime;

/// <summary>What the oneDNN convolution check decided in this process.</summary>
public enum OneDnnConvolutionState
{
    /// <summary>libtorch has not been loaded through <see cref="TorchRuntime.EnsureLoaded"/> yet.</summary>
    NotChecked,
    /// <summary>oneDNN's float32 convolution gave the float64 answer: left on.</summary>
    Correct,
    /// <summary>oneDNN's float32 convolution gave wrong values on this CPU: turned off, libtorch's own convolution is used.</summary>
    WrongTurnedOff,
    /// <summary>Wrong on this CPU, but <see cref="OneDnnConvolutionCheck.EnvironmentVariable"/>=on keeps it.</summary>
    WrongKeptByEnvironment,
    /// <summary><see cref="OneDnnConvolutionCheck.EnvironmentVariable"/>=off turned it off without a check.</summary>
    TurnedOffByEnvironment,
    /// <summary>This libtorch does not export the switch (or was built without oneDNN): nothing to decide.</summary>
    NotExported,
}

/// <summary>Outcome of the check: the state, the probe's largest relative error (NaN when not run) and a one-line explanation.</summary>
public sealed record OneDnnConvolutionStatus(OneDnnConvolutionState State, double ProbeError, string Detail);

/// <summary>
/// Checks libtorch's oneDNN (mkldnn) float32 convolution against a float64 convolution once, when libtorch loads, and turns
/// oneDNN off where it computes wrong values.
/// <para>
/// On some x86-64 machines with AVX-512 (seen on a virtualised 2-core AMD EPYC), oneDNN's float32 convolution in the bundled
/// libtorch returns wrong outputs and NaN input gradients whenever the kernel is larger than 1×1 and the input has more than
/// 16 channels that are not a multiple of 16 (17–31, 33–47, …): its 16-channel blocked layout mishandles the channel tail. The
/// error is deterministic and silent (relative errors of order 1, no exception). 1×1 kernels, ≤ 16 channels and multiples of
/// 16 are right, which is why a ResNet trunk trains normally while a head with, say, 24 input channels does not.
/// </para>
/// <para>
/// The probe is one 3×3 convolution with 24 input channels on deterministic values (no random numbers are drawn, so seeded
/// runs are unaffected), forward and input gradient, compared with the same in float64 (which oneDNN never handles). Where
/// it disagrees, <c>at::globalContext().setUserEnabledMkldnn(false)</c> switches libtorch to its own convolution (im2col +
/// GEMM on MKL), as PyTorch's <c>torch.backends.mkldnn.enabled = False</c> does; on a machine where the probe passes nothing
/// changes. <c>WEAKSEG_ONEDNN_CONV=auto</c> (the default) does this; <c>off</c> turns oneDNN's convolution off without the
/// probe; <c>on</c> keeps it even where the probe fails (to compare). <c>weakseg env</c> prints the outcome.
/// </para>
/// </summary>
public static class OneDnnConvolutionCheck
{
    public const string EnvironmentVariable = "WEAKSEG_ONEDNN_CONV";

    /// <summary>bool at::Context::userEnabledMkldnn() const / void at::Context::setUserEnabledMkldnn(bool).</summary>
    static readonly LibTorchContextFlag UserFlag = new("_ZNK2at7Context17userEnabledMkldnnEv", "_ZN2at7Context20setUserEnabledMkldnnEb");

    /// <summary>Largest relative error the probe accepts; float32 rounding on this probe is ~1e-7.</summary>
    public const double Tolerance = 1e-4;

    static readonly object Gate = new();
    static OneDnnConvolutionStatus _status = new(OneDnnConvolutionState.NotChecked, double.NaN, "libtorch not loaded yet");

    public static OneDnnConvolutionStatus Status
    {
        get { lock (Gate) return _status; }
    }

    /// <summary>The environment's choice: auto (default), on or off. A bad value is one error line.</summary>
    public static string Mode()
    {
        var raw = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(raw)) return "auto";
        return raw.Trim().ToLowerInvariant() switch
        {
            "auto" => "auto",
            "1" or "on" or "true" or "yes" => "on",
            "0" or "off" or "false" or "no" => "off",
            _ => throw new WeakSegException($"{EnvironmentVariable}={raw}: expected auto (the default: check, turn off where wrong), on or off."),
        };
    }

    /// <summary>libtorch's user flag for oneDNN (null where the switch is not exported).</summary>
    public static bool? UserEnabled => UserFlag.Value;

    /// <summary>Runs once, from <see cref="TorchRuntime.EnsureLoaded"/> after libtorch has loaded.</summary>
    internal static void Apply()
    {
        lock (Gate)
        {
            if (_status.State != OneDnnConvolutionState.NotChecked) return;
            var mode = Mode();
            if (!UserFlag.IsExported)
            {
                _status = new(OneDnnConvolutionState.NotExported, double.NaN, "this libtorch does not export the oneDNN switch");
                return;
            }
            if (mode == "off")
            {
                UserFlag.TrySet(false);
                _status = new(OneDnnConvolutionState.TurnedOffByEnvironment, double.NaN, $"turned off by {EnvironmentVariable}=off");
                return;
            }
            double error = ProbeError();
            if (error <= Tolerance)
            {
                _status = new(OneDnnConvolutionState.Correct, error, $"float32 convolution agrees with float64 (relative error {error:g2})");
                return;
            }
            if (mode == "on")
            {
                _status = new(OneDnnConvolutionState.WrongKeptByEnvironment, error,
                    $"WRONG on this CPU (relative error {error:g2}) but kept by {EnvironmentVariable}=on");
                return;
            }
            UserFlag.TrySet(false);
            _status = new(OneDnnConvolutionState.WrongTurnedOff, error,
                $"wrong on this CPU (relative error {error:g2} on a 24-channel 3×3 probe): turned off, libtorch's own convolution is used");
        }
    }

    /// <summary>Largest error of a float32 convolution (output and input gradient) against float64, relative to the
    /// float64 values' largest magnitude; +∞ for a NaN.</summary>
    public static double ProbeError()
    {
        using var scope = torch.NewDisposeScope();
        using var grad = torch.enable_grad();
        // deterministic, non-symmetric values in [-1, 1]: no random numbers are drawn
        var x64 = torch.arange(2 * 24 * 5 * 6, dtype: torch.float64).reshape(2, 24, 5, 6).mul(0.37).sin();
        var w64 = torch.arange(3 * 24 * 3 * 3, dtype: torch.float64).reshape(3, 24, 3, 3).mul(0.73).cos().div(8);
        var (y32, gx32) = ForwardAndInputGradient(x64.to(torch.float32), w64.to(torch.float32));
        var (y64, gx64) = ForwardAndInputGradient(x64, w64);
        double e = Math.Max(Relative(y32, y64), Relative(gx32, gx64));
        return double.IsNaN(e) ? double.PositiveInfinity : e;
    }

    static (torch.Tensor Output, torch.Tensor InputGradient) ForwardAndInputGradient(torch.Tensor x, torch.Tensor w)
    {
        var xg = x.detach().requires_grad_(true);
        var y = torch.nn.functional.conv2d(xg, w, padding: [1, 1]);
        var weights = torch.arange(y.numel(), dtype: y.dtype).reshape(y.shape).mul(0.11).sin();
        y.mul(weights).sum().backward();
        return (y.detach(), xg.grad!.detach());
    }

    static double Relative(torch.Tensor a, torch.Tensor reference)
    {
        var r = reference.to(torch.float64);
        double scale = Math.Max(r.abs().max().item<double>(), 1e-12);
        return a.to(torch.float64).sub(r).abs().max().item<double>() / scale;
    }
}
