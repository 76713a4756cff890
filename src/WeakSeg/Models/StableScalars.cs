using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Models;

/// <summary>
/// Tensor arithmetic whose Scalar arguments outlive the native call.
/// TorchSharp 0.107's <c>a + b</c> / <c>a.add(b)</c> convert the alpha 1 to a fresh <see cref="Scalar"/>, read its handle and call
/// libtorch without keeping the Scalar reachable. A garbage collection started by another thread (batch loader, progress bar)
/// while libtorch runs can then finalize that Scalar and free its native memory mid-call: libtorch reads a garbage tag and fails
/// with "Expected false to be true" at c10/core/Scalar.h (toFloat), at a random step. These helpers pass process-lifetime Scalars
/// instead, so the handles stay valid. Use them in code that runs every training step.
/// </summary>
public static class StableScalars
{
    /// <summary>The Scalar 1, never disposed or finalized (static root).</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/> (broadcasting), without a temporary Scalar.</summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, One);
}
