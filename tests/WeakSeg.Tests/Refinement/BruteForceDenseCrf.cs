using WeakSeg.Refinement;

namespace WeakSeg.Tests.Refinement;

/// <summary>
/// Second implementation for agreement tests: exact O(N²) Gaussian kernels in double precision, the same mean-field
/// update as pydensecrf (Q ← softmax(−U + Σ_m w_m n_m ⊙ K_m(n_m ⊙ Q)), n_m = 1/√(K_m 1), self pair included).
/// </summary>
static class BruteForceDenseCrf
{
    /// <summary>Exact Σ_j exp(−½‖f_i − f_j‖²) v_j for point-major features [N, d] and values [N, c].</summary>
    public static double[] ExactFilter(float[] features, int d, double[] values, int channels)
    {
        int n = features.Length / d;
        var kernel = KernelMatrix(features, d);
        var output = new double[n * channels];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double k = kernel[i * n + j];
                for (int c = 0; c < channels; c++) output[i * channels + c] += k * values[j * channels + c];
            }
        return output;
    }

    public static double[] KernelMatrix(float[] features, int d)
    {
        int n = features.Length / d;
        var kernel = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k < d; k++)
                {
                    double t = features[i * d + k] - features[j * d + k];
                    s += t * t;
                }
                kernel[i * n + j] = Math.Exp(-0.5 * s);
            }
        return kernel;
    }

    /// <summary>Mean field with exact kernels; unary and result are [K, N] label-major.</summary>
    public static double[] MeanField(byte[] rgb, int width, int height, float[] unary, int k, DenseCrfConfig config)
    {
        int n = width * height;
        var kernels = new List<(double[] Kernel, double[] Norm, double Weight)>();
        if (config.GaussianWeight > 0)
            kernels.Add(Normalised(DenseCrf.GaussianFeatures(width, height, config.GaussianSxy), 2, config.GaussianWeight));
        if (config.BilateralWeight > 0)
            kernels.Add(Normalised(DenseCrf.BilateralFeatures(rgb, width, height, config.BilateralSxy, config.BilateralSrgb), 5, config.BilateralWeight));

        var q = new double[k * n];
        var logits = new double[k * n];
        for (int e = 0; e < logits.Length; e++) logits[e] = -unary[e];
        Softmax(logits, q, k, n);
        for (int iteration = 0; iteration < config.Iterations && kernels.Count > 0; iteration++)
        {
            for (int e = 0; e < logits.Length; e++) logits[e] = -unary[e];
            foreach (var (kernel, norm, weight) in kernels)
                for (int c = 0; c < k; c++)
                    for (int i = 0; i < n; i++)
                    {
                        double s = 0;
                        for (int j = 0; j < n; j++) s += kernel[i * n + j] * norm[j] * q[c * n + j];
                        logits[c * n + i] += weight * norm[i] * s;
                    }
            Softmax(logits, q, k, n);
        }
        return q;
    }

    static (double[] Kernel, double[] Norm, double Weight) Normalised(float[] features, int d, double weight)
    {
        var kernel = KernelMatrix(features, d);
        int n = features.Length / d;
        var norm = new double[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < n; j++) s += kernel[i * n + j];
            norm[i] = 1 / Math.Sqrt(s);
        }
        return (kernel, norm, weight);
    }

    static void Softmax(double[] logits, double[] q, int k, int n)
    {
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int c = 0; c < k; c++) max = Math.Max(max, logits[c * n + i]);
            for (int c = 0; c < k; c++) sum += q[c * n + i] = Math.Exp(logits[c * n + i] - max);
            for (int c = 0; c < k; c++) q[c * n + i] /= sum;
        }
    }
}

/// <summary>Deterministic small inputs: a blocky image with noise and noisy probabilities that favour each block's label.</summary>
static class CrfTestInputs
{
    public static (byte[] Rgb, float[] Probabilities, byte[] TrueLabels) Blocky(int width, int height, int labels, uint seed)
    {
        var random = new SplitMix(seed);
        var palette = new byte[labels * 3];
        for (int i = 0; i < palette.Length; i++) palette[i] = (byte)random.Next(256);
        var rgb = new byte[width * height * 3];
        var truth = new byte[width * height];
        var probabilities = new float[labels * width * height];
        int n = width * height;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = y * width + x;
                // Blocks: quadrant-like regions with a diagonal cut, labels cycling.
                int label = ((x * 2 / width) + 2 * (y * 2 / height) + (x + y > width ? 1 : 0)) % labels;
                truth[i] = (byte)label;
                for (int c = 0; c < 3; c++)
                    rgb[i * 3 + c] = (byte)Math.Clamp(palette[label * 3 + c] + random.Next(21) - 10, 0, 255);
                float sum = 0;
                for (int l = 0; l < labels; l++)
                {
                    float logit = (float)(random.NextDouble() * 2.0) + (l == label ? 1.2f : 0f);
                    probabilities[l * n + i] = MathF.Exp(logit);
                    sum += probabilities[l * n + i];
                }
                for (int l = 0; l < labels; l++) probabilities[l * n + i] /= sum;
            }
        return (rgb, probabilities, truth);
    }
}

/// <summary>Small deterministic generator (SplitMix64), independent of System.Random's algorithm.</summary>
sealed class SplitMix(ulong seed)
{
    ulong _state = seed;

    public ulong NextULong()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));
    public int Next(int bound) => (int)(NextDouble() * bound);
}
