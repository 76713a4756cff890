using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Support;

/// <summary>Element-wise tensor comparisons with the fixture tolerance rule.</summary>
public static class TensorAssert
{
    /// <summary>|actual − expected| ≤ tol·max(1, |expected|) everywhere (absolute below magnitude 1, relative above); shapes equal.</summary>
    public static void Close(Tensor expected, Tensor actual, double tol = 1e-4, string name = "")
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{name}: shape [{string.Join(", ", actual.shape)}] != expected [{string.Join(", ", expected.shape)}]");
        using var e = expected.detach().to_type(ScalarType.Float64).cpu().contiguous();
        using var a = actual.detach().to_type(ScalarType.Float64).cpu().contiguous();
        var ev = e.data<double>().ToArray();
        var av = a.data<double>().ToArray();
        double worst = 0;
        int worstIndex = -1;
        for (int i = 0; i < ev.Length; i++)
        {
            double excess = Math.Abs(av[i] - ev[i]) / Math.Max(1.0, Math.Abs(ev[i]));
            if (double.IsNaN(av[i]) || excess > worst) { worst = double.IsNaN(av[i]) ? double.PositiveInfinity : excess; worstIndex = i; }
        }
        Assert.True(worst <= tol, $"{name}: worst scaled error {worst:g3} at flat index {worstIndex} (actual {(worstIndex >= 0 ? av[worstIndex] : 0)}, expected {(worstIndex >= 0 ? ev[worstIndex] : 0)})");
    }
}
