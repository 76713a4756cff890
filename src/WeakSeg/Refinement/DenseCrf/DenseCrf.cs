using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace WeakSeg.Refinement;

/// <summary>
/// Fully connected CRF refinement (Krähenbühl and Koltun, NIPS 2011) of per-pixel class probabilities, in pure C#.
/// Mean-field inference as pydensecrf's <c>DenseCRF2D.inference</c>: Q⁰ = softmax(−U), then t times
/// Q ← softmax(−U + Σ_m w_m · n_m ⊙ K_m (n_m ⊙ Q)), where K_m is the Gaussian kernel of feature set m evaluated with a
/// permutohedral lattice (<see cref="PermutohedralLattice"/>, built once per kernel and reused by every iteration)
/// and n_m = 1/√(K_m 1) its symmetric normalisation. With Potts compatibility the message −μ·K̃Q is, up to a per-pixel
/// constant that softmax removes, +w·K̃Q for the pixel's own label.
/// </summary>
/// <remarks>
/// Images are <c>byte</c> RGB, H×W×3 row-major (HWC), as decoded PNG/JPEG. Probabilities are [K, H, W] label-major.
/// Calls are independent and thread-safe; each uses up to <see cref="DenseCrfConfig.MaxThreads"/> threads.
/// </remarks>
public static class DenseCrf
{
    /// <summary>
    /// Refines softmax probabilities. Unary = −log(clip(p, <see cref="DenseCrfConfig.ProbabilityClip"/>, 1))
    /// (pydensecrf unary_from_softmax). Each pixel's probabilities must be finite, ≥ 0 and sum to 1 within
    /// <see cref="DenseCrfConfig.ProbabilitySumTolerance"/> (they are renormalised); use <see cref="RefineScores"/> for
    /// scores that do not sum to 1.
    /// </summary>
    /// <param name="rgb">image, H×W×3 bytes, row-major RGB</param>
    /// <param name="width">W</param>
    /// <param name="height">H</param>
    /// <param name="probabilities">[K, H, W]; K is inferred from the length</param>
    /// <param name="config">kernel parameters; <see cref="DenseCrfConfig.Psa"/> when null</param>
    public static DenseCrfResult Refine(ReadOnlySpan<byte> rgb, int width, int height, ReadOnlySpan<float> probabilities, DenseCrfConfig? config = null)
    {
        var clock = Stopwatch.StartNew();
        config = CheckCommon(rgb, width, height, config);
        int n = width * height;
        int k = LabelCountOf(probabilities.Length, n, width, height, "probabilities");
        CheckProbabilityValues(probabilities, k, width, height, "probability");
        var sums = new float[n];
        for (int label = 0; label < k; label++)
        {
            var row = probabilities.Slice(label * n, n);
            var rowVectors = MemoryMarshal.Cast<float, Vector<float>>(row);
            var sumVectors = MemoryMarshal.Cast<float, Vector<float>>(sums.AsSpan());
            for (int j = 0; j < rowVectors.Length; j++) sumVectors[j] += rowVectors[j];
            for (int i = rowVectors.Length * Vector<float>.Count; i < n; i++) sums[i] += row[i];
        }
        for (int i = 0; i < n; i++)
            if (!(MathF.Abs(sums[i] - 1f) <= config.ProbabilitySumTolerance))
                throw new WeakSegException($"dense CRF: probabilities at pixel (x {i % width}, y {i / width}) sum to {sums[i]:G6}, not 1 " +
                                           $"(tolerance {config.ProbabilitySumTolerance:G3}); pass softmax outputs, or use DenseCrf.RefineScores for unnormalised scores");
        var unary = GC.AllocateUninitializedArray<float>(k * n);
        probabilities.CopyTo(unary);
        var inverseSums = new float[n];
        for (int i = 0; i < n; i++) inverseSums[i] = 1f / sums[i];
        NegativeLogInPlace(unary, n, inverseSums, config.ProbabilityClip, config.MaxThreads ?? Environment.ProcessorCount);
        return Run(rgb, width, height, unary, k, config, clock);
    }

    /// <summary>
    /// Refines non-negative scores that need not sum to 1 (e.g. PSA-style [background^α; CAMs]), with unary
    /// −log(clip(s, clip, 1)) exactly as pydensecrf unary_from_softmax does for any array.
    /// </summary>
    public static DenseCrfResult RefineScores(ReadOnlySpan<byte> rgb, int width, int height, ReadOnlySpan<float> scores, DenseCrfConfig? config = null)
    {
        var clock = Stopwatch.StartNew();
        config = CheckCommon(rgb, width, height, config);
        int n = width * height;
        int k = LabelCountOf(scores.Length, n, width, height, "scores");
        CheckProbabilityValues(scores, k, width, height, "score");
        var unary = scores.ToArray();
        NegativeLogInPlace(unary, n, null, config.ProbabilityClip, config.MaxThreads ?? Environment.ProcessorCount);
        return Run(rgb, width, height, unary, k, config, clock);
    }

    /// <summary>
    /// Refines a label map: unary −log(p) for the given label and −log((1 − p)/(K − 1)) for the others, p =
    /// <see cref="DenseCrfConfig.GroundTruthProbability"/> (pydensecrf unary_from_labels with zero_unsure = False).
    /// Pixels whose label equals <paramref name="unsureLabel"/> (e.g. 255) get a uniform unary; any other label ≥ K is an error.
    /// </summary>
    /// <param name="labels">[H, W] row-major</param>
    /// <param name="labelCount">K, 2..256</param>
    /// <param name="unsureLabel">label value meaning "could be anything", or null</param>
    public static DenseCrfResult RefineLabels(ReadOnlySpan<byte> rgb, int width, int height, ReadOnlySpan<byte> labels, int labelCount,
                                              DenseCrfConfig? config = null, byte? unsureLabel = null)
    {
        var clock = Stopwatch.StartNew();
        config = CheckCommon(rgb, width, height, config);
        int n = width * height;
        CheckLabelCount(labelCount);
        if (labels.Length != n)
            throw new WeakSegException($"dense CRF: label map has {labels.Length} pixels but the image is {width}×{height} = {n}");
        float gt = config.GroundTruthProbability;
        float given = -MathF.Log(gt), other = -MathF.Log((1f - gt) / (labelCount - 1)), uniform = MathF.Log(labelCount);
        var unary = new float[labelCount * n];
        for (int i = 0; i < n; i++)
        {
            int label = labels[i];
            if (unsureLabel is { } unsure && label == unsure)
            {
                for (int c = 0; c < labelCount; c++) unary[c * n + i] = uniform;
                continue;
            }
            if (label >= labelCount)
                throw new WeakSegException($"dense CRF: label {label} at pixel (x {i % width}, y {i / width}) is outside 0..{labelCount - 1}" +
                                           (unsureLabel is null ? "" : $" and is not the unsure label {unsureLabel}"));
            for (int c = 0; c < labelCount; c++) unary[c * n + i] = c == label ? given : other;
        }
        return Run(rgb, width, height, unary, labelCount, config, clock);
    }

    /// <summary>Refines with a unary energy given directly ([K, H, W], finite; lower = more likely).</summary>
    public static DenseCrfResult RefineUnary(ReadOnlySpan<byte> rgb, int width, int height, ReadOnlySpan<float> unary, DenseCrfConfig? config = null)
    {
        var clock = Stopwatch.StartNew();
        config = CheckCommon(rgb, width, height, config);
        int n = width * height;
        int k = LabelCountOf(unary.Length, n, width, height, "unary");
        for (int e = 0; e < unary.Length; e++)
            if (!float.IsFinite(unary[e]))
                throw new WeakSegException($"dense CRF: unary at label {e / n}, pixel (x {e % n % width}, y {e % n / width}) is {unary[e]}");
        return Run(rgb, width, height, unary.ToArray(), k, config, clock);
    }

    /// <summary>values ← −log(clamp(values · scale[pixel], clip, 1)) for [K, N] values; scale null = 1.</summary>
    static void NegativeLogInPlace(float[] values, int n, float[]? pixelScale, float clip, int threads)
    {
        int k = values.Length / n;
        PermutohedralLattice.ForRanges(k, 1, threads, (first, last) =>
        {
            var lower = new Vector<float>(clip);
            for (int label = first; label < last; label++)
            {
                var row = values.AsSpan(label * n, n);
                int i = 0;
                var rows = MemoryMarshal.Cast<float, Vector<float>>(row);
                var scales = pixelScale is null ? default : MemoryMarshal.Cast<float, Vector<float>>(pixelScale.AsSpan());
                for (int j = 0; j < rows.Length; j++, i += Vector<float>.Count)
                {
                    var v = pixelScale is null ? rows[j] : rows[j] * scales[j];
                    rows[j] = -Vector.Log(Vector.Min(Vector.Max(v, lower), Vector<float>.One));
                }
                for (; i < n; i++)
                    row[i] = -MathF.Log(Math.Clamp(pixelScale is null ? row[i] : row[i] * pixelScale[i], clip, 1f));
            }
        });
    }

    /// <summary>Features of the smoothness kernel: (x/sxy, y/sxy) per pixel, [N, 2].</summary>
    public static float[] GaussianFeatures(int width, int height, float sxy)
    {
        var f = new float[width * height * 2];
        for (int y = 0, i = 0; y < height; y++)
            for (int x = 0; x < width; x++, i++)
            {
                f[i * 2] = x / sxy;
                f[i * 2 + 1] = y / sxy;
            }
        return f;
    }

    /// <summary>Features of the appearance kernel: (x/sxy, y/sxy, r/srgb, g/srgb, b/srgb) per pixel, [N, 5].</summary>
    public static float[] BilateralFeatures(ReadOnlySpan<byte> rgb, int width, int height, float sxy, float srgb)
    {
        var f = new float[width * height * 5];
        for (int y = 0, i = 0; y < height; y++)
            for (int x = 0; x < width; x++, i++)
            {
                int o = i * 5;
                f[o] = x / sxy;
                f[o + 1] = y / sxy;
                f[o + 2] = rgb[i * 3] / srgb;
                f[o + 3] = rgb[i * 3 + 1] / srgb;
                f[o + 4] = rgb[i * 3 + 2] / srgb;
            }
        return f;
    }

    static DenseCrfConfig CheckCommon(ReadOnlySpan<byte> rgb, int width, int height, DenseCrfConfig? config)
    {
        config ??= DenseCrfConfig.Psa;
        var errors = config.Validate();
        if (errors.Count > 0) throw new WeakSegException("dense CRF config: " + string.Join("; ", errors));
        if (width <= 0 || height <= 0)
            throw new WeakSegException($"dense CRF: empty image (width {width}, height {height})");
        if ((long)width * height > int.MaxValue / 64)
            throw new WeakSegException($"dense CRF: image {width}×{height} is too large");
        long expected = (long)width * height * 3;
        if (rgb.Length != expected)
            throw new WeakSegException($"dense CRF: image buffer has {rgb.Length} bytes but {width}×{height} RGB needs {expected} (H×W×3, row-major)");
        return config;
    }

    static int LabelCountOf(int length, int n, int width, int height, string what)
    {
        if (length == 0 || length % n != 0)
            throw new WeakSegException($"dense CRF: {what} have {length} values, not a multiple of the image's {width}×{height} = {n} pixels (expected [K, H, W])");
        int k = length / n;
        CheckLabelCount(k);
        return k;
    }

    static void CheckLabelCount(int k)
    {
        if (k < 2) throw new WeakSegException($"dense CRF: needs at least 2 labels, got K = {k} (with one label there is nothing to refine)");
        if (k > 256) throw new WeakSegException($"dense CRF: at most 256 labels (byte label map), got K = {k}");
    }

    static void CheckProbabilityValues(ReadOnlySpan<float> values, int k, int width, int height, string what)
    {
        int n = width * height;
        // Fast vector pass: all in [0, +inf) and not NaN (NaN fails every comparison)? Then nothing to report.
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
        var bad = Vector<int>.Zero;
        var infinity = new Vector<float>(float.PositiveInfinity);
        foreach (var v in vectors)
            bad |= ~Vector.GreaterThanOrEqual(v, Vector<float>.Zero) | Vector.Equals(v, infinity);
        for (int e = bad == Vector<int>.Zero ? vectors.Length * Vector<float>.Count : 0; e < values.Length; e++)
        {
            float v = values[e];
            if (!(v >= 0f) || float.IsPositiveInfinity(v))
            {
                string problem = float.IsNaN(v) ? "NaN" : v < 0 ? $"negative ({v:G6})" : "infinite";
                throw new WeakSegException($"dense CRF: {what} of label {e / n} at pixel (x {e % n % width}, y {e % n / width}) is {problem}; expected values in [0, 1]");
            }
        }
    }

    /// <summary>Builds the kernels, runs mean field, and returns Q in [K, H, W] with its argmax.</summary>
    static DenseCrfResult Run(ReadOnlySpan<byte> rgb, int width, int height, float[] unaryLabelMajor, int k, DenseCrfConfig config, Stopwatch clock)
    {
        int n = width * height;
        int threads = config.MaxThreads ?? Environment.ProcessorCount;
        int stride = LatticeWorkspace.RoundUpToVector(k);

        var buildClock = Stopwatch.StartNew();
        var terms = new List<PairwiseTerm>(2);
        var vertices = new int[2];
        var kernelBuildSeconds = new double[2];
        if (config.GaussianWeight > 0)
        {
            var lattice = PermutohedralLattice.Build(GaussianFeatures(width, height, config.GaussianSxy), n, 2, threads);
            terms.Add(new PairwiseTerm(lattice, config.GaussianWeight));
            vertices[0] = lattice.VertexCount;
            kernelBuildSeconds[0] = buildClock.Elapsed.TotalSeconds;
        }
        if (config.BilateralWeight > 0)
        {
            var lattice = PermutohedralLattice.Build(BilateralFeatures(rgb, width, height, config.BilateralSxy, config.BilateralSrgb), n, 5, threads);
            terms.Add(new PairwiseTerm(lattice, config.BilateralWeight));
            vertices[1] = lattice.VertexCount;
            kernelBuildSeconds[1] = buildClock.Elapsed.TotalSeconds - kernelBuildSeconds[0];
        }
        double buildSeconds = buildClock.Elapsed.TotalSeconds;

        // Point-major working arrays with rows padded to the SIMD width; padded lanes of −U are −1e30 so softmax gives them 0.
        var negUnary = GC.AllocateUninitializedArray<float>(n * stride);
        var q = GC.AllocateUninitializedArray<float>(n * stride);
        PermutohedralLattice.ForRanges(n, 4096, threads, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var row = negUnary.AsSpan(i * stride, stride);
                for (int c = 0; c < k; c++) row[c] = -unaryLabelMajor[c * n + i];
                row[k..].Fill(-1e30f);
                SoftmaxRow(row, q.AsSpan(i * stride, stride));
            }
        });

        var inferenceClock = Stopwatch.StartNew();
        if (terms.Count > 0)
        {
            var workspaces = terms.Select(t => t.Lattice.CreateWorkspace(k)).ToArray();
            var blurred = new float[terms.Count][];
            for (int iteration = 0; iteration < config.Iterations; iteration++)
            {
                for (int t = 0; t < terms.Count; t++)
                    blurred[t] = terms[t].Lattice.SplatAndBlur(q, terms[t].SplatWeight, workspaces[t]);
                // Q_i = softmax(−U_i + Σ_m slice_m(i)), one pass over the pixels for all kernels.
                PermutohedralLattice.ForRanges(n, 2048, threads, (start, end) =>
                {
                    var row = new Vector<float>[stride / Vector<float>.Count];
                    var baseline = MemoryMarshal.Cast<float, Vector<float>>(negUnary.AsSpan());
                    for (int i = start; i < end; i++)
                    {
                        baseline.Slice(i * row.Length, row.Length).CopyTo(row);
                        for (int t = 0; t < terms.Count; t++)
                            terms[t].Lattice.SliceAdd(blurred[t], terms[t].SliceWeight, i, row);
                        SoftmaxRow(MemoryMarshal.Cast<Vector<float>, float>(row.AsSpan()), q.AsSpan(i * stride, stride));
                    }
                });
            }
        }
        // With no pairwise term every iteration gives softmax(−U) again: Q is already that.
        double inferenceSeconds = inferenceClock.Elapsed.TotalSeconds;

        var probabilities = new float[k * n];
        var labels = new byte[n];
        PermutohedralLattice.ForRanges(n, 4096, threads, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var row = q.AsSpan(i * stride, k);
                int best = 0;
                for (int c = 0; c < k; c++)
                {
                    probabilities[c * n + i] = row[c];
                    if (row[c] > row[best]) best = c;
                }
                labels[i] = (byte)best;
            }
        });
        var timings = new DenseCrfTimings(clock.Elapsed.TotalSeconds, buildSeconds, kernelBuildSeconds, inferenceSeconds,
                                          terms.Count > 0 ? config.Iterations : 0, threads, vertices);
        return new DenseCrfResult(probabilities, labels, width, height, k, timings);
    }

    /// <summary>out = softmax(row) over a padded row (padded lanes hold −1e30 and come out 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SoftmaxRow(ReadOnlySpan<float> row, Span<float> output)
    {
        var v = MemoryMarshal.Cast<float, Vector<float>>(row);
        var o = MemoryMarshal.Cast<float, Vector<float>>(output);
        var max = v[0];
        for (int l = 1; l < v.Length; l++) max = Vector.Max(max, v[l]);
        float m = max[0];
        for (int j = 1; j < Vector<float>.Count; j++) m = MathF.Max(m, max[j]);
        var mv = new Vector<float>(m);
        var sum = Vector<float>.Zero;
        for (int l = 0; l < v.Length; l++)
        {
            var e = Vector.Exp(v[l] - mv);
            o[l] = e;
            sum += e;
        }
        var inv = new Vector<float>(1f / Vector.Sum(sum));
        for (int l = 0; l < o.Length; l++) o[l] *= inv;
    }

    /// <summary>One Potts kernel: its lattice with the normalisation n = 1/√(K1) and weight w folded into splat and slice weights.</summary>
    sealed class PairwiseTerm
    {
        public readonly PermutohedralLattice Lattice;
        /// <summary>Point i, corner r: barycentric · n[i].</summary>
        public readonly float[] SplatWeight;
        /// <summary>Point i, corner r: barycentric · n[i] · sliceScale · w.</summary>
        public readonly float[] SliceWeight;

        public PairwiseTerm(PermutohedralLattice lattice, float weight)
        {
            Lattice = lattice;
            int n = lattice.PointCount, corners = lattice.Dimensions + 1;
            var ones = new float[n];
            Array.Fill(ones, 1f);
            var density = new float[n];
            lattice.Filter(ones, density, 1);
            SplatWeight = new float[lattice.PointWeight.Length];
            SliceWeight = new float[lattice.PointWeight.Length];
            float scale = lattice.SliceScale * weight;
            for (int i = 0; i < n; i++)
            {
                float norm = 1f / MathF.Sqrt(density[i] + 1e-20f);
                for (int e = i * corners; e < (i + 1) * corners; e++)
                {
                    SplatWeight[e] = lattice.PointWeight[e] * norm;
                    SliceWeight[e] = SplatWeight[e] * scale;
                }
            }
        }
    }
}
