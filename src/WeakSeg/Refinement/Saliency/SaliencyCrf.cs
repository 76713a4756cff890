namespace WeakSeg.Refinement.Saliency;

/// <summary>
/// The dense CRF that smooths a saliency map in AuxSegNet's label update (xulianuwa/AuxSegNet tool/imutils.py <c>crf_for_sal</c>, the
/// DSS saliency CRF): two labels (background, salient) with unary energies E₀ = −ln(1 − s + ε) / (τ·σ(1 − s)) and
/// E₁ = −ln(s + ε) / (τ·σ(s)), ε = 1e-8, τ = 1.05, σ the logistic function; Gaussian kernel sxy 3 compat 3, bilateral sxy 60 srgb 5
/// compat 5; one mean-field iteration. The result is the salient label's marginal.
/// </summary>
public static class SaliencyCrf
{
    public const double Tau = 1.05;
    public const double Epsilon = 1e-8;

    /// <summary>The kernels and the single iteration of <c>crf_for_sal</c>.</summary>
    public static DenseCrfConfig Config => new()
    {
        Iterations = 1, GaussianSxy = 3f, GaussianWeight = 3f, BilateralSxy = 60f, BilateralSrgb = 5f, BilateralWeight = 5f,
    };

    /// <summary>The two unary planes [2·H·W] (background first) of saliency values in [0, 1].</summary>
    public static float[] Unary(ReadOnlySpan<float> saliency)
    {
        int n = saliency.Length;
        var unary = new float[2 * n];
        for (int i = 0; i < n; i++)
        {
            double s = saliency[i];
            unary[i] = (float)(-Math.Log(1.0 - s + Epsilon) / (Tau * Logistic(1.0 - s)));
            unary[n + i] = (float)(-Math.Log(s + Epsilon) / (Tau * Logistic(s)));
        }
        return unary;
    }

    static double Logistic(double x) => 1.0 / (1.0 + Math.Exp(-x));

    /// <summary>Smooths <paramref name="saliency"/> [H·W] in [0, 1] on image <paramref name="rgb"/> (H·W·3 bytes, RGB) → [H·W] in [0, 1].</summary>
    public static float[] Refine(ReadOnlySpan<byte> rgb, int width, int height, ReadOnlySpan<float> saliency, int? threads = null)
    {
        if (saliency.Length != width * height)
            throw new WeakSegException($"saliency CRF: the map has {saliency.Length} values, the image {width}×{height} pixels");
        for (int i = 0; i < saliency.Length; i++)
            if (!(saliency[i] >= 0f && saliency[i] <= 1f))
                throw new WeakSegException($"saliency CRF: value {saliency[i]} at pixel (x {i % width}, y {i / width}) is outside [0, 1]");
        var result = DenseCrf.RefineUnary(rgb, width, height, Unary(saliency), Config with { MaxThreads = threads });
        return result.Probabilities.AsSpan(width * height, width * height).ToArray();
    }
}
