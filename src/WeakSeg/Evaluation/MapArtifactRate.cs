namespace WeakSeg.Evaluation;

/// <summary>
/// Artifact rate of a set of maps (a metric that reads pixel labels): the mean over (image, present class) pairs of the share of
/// the class map's mass that falls on ground-truth background pixels, and the same mean per class.
/// </summary>
/// <param name="Rate">mean share over every (image, present class) pair with positive map mass; NaN when there is none</param>
/// <param name="ByClass">mean share per class index 0..K−1 (0 = background, always NaN); NaN for a class with no pair</param>
/// <param name="Pairs">(image, class) pairs averaged</param>
public sealed record ArtifactRateResult(double Rate, IReadOnlyList<double> ByClass, long Pairs);

/// <summary>
/// How much of each present class's map lies on background (MoRe's "artifacts": activations outside every object). For one image
/// and one map plane m (class c, a class the image carries), over the pixels whose ground truth is not 255:
/// share = Σ_{gt = 0} m / Σ m, i.e. the plane normalised to unit mass, summed over the background pixels. 0 means every bit of the
/// map sits on objects (of any class), 1 means it sits on background only. A plane with zero mass is left out.
/// </summary>
public static class MapArtifactRate
{
    /// <summary>(class, share) of each plane of one image with positive mass. <paramref name="gt"/> has Height·Width labels.</summary>
    /// <exception cref="WeakSegException">sizes differ</exception>
    public static IEnumerable<(int Class, double Share)> ImageShares(CamMaps maps, byte[] gt)
    {
        if (gt.Length != maps.PlaneSize) throw new WeakSegException($"ground truth has {gt.Length} pixels, maps have {maps.PlaneSize}");
        for (int i = 0; i < maps.Classes.Length; i++)
        {
            var plane = maps.Plane(i);
            double total = 0, onBackground = 0;
            for (int p = 0; p < plane.Length; p++)
            {
                byte g = gt[p];
                if (g == ConfusionMatrix.Ignore) continue;
                total += plane[p];
                if (g == 0) onBackground += plane[p];
            }
            if (total > 0) yield return (maps.Classes[i], onBackground / total);
        }
    }

    /// <summary>The rate of in-memory (maps, ground truth) pairs for <paramref name="numClasses"/> classes (background included). The
    /// maps of a folder on disk are scored with their threshold sweep, in one reading: <see cref="CamThresholdSweep.EvaluateWithArtifactRate"/>.</summary>
    public static ArtifactRateResult Run(IEnumerable<(CamMaps Maps, byte[] GroundTruth)> images, int numClasses)
    {
        var acc = new Accumulator(numClasses);
        foreach (var (maps, gt) in images) acc.Add(ImageShares(maps, gt));
        return acc.Result();
    }

    /// <summary>Sums of the shares per class (one per worker of a parallel reading, merged at the end).</summary>
    internal sealed class Accumulator(int numClasses)
    {
        readonly double[] _sum = new double[numClasses];
        readonly long[] _count = new long[numClasses];

        public void Add(IEnumerable<(int Class, double Share)> shares)
        {
            foreach (var (c, share) in shares)
            {
                if (c < 1 || c >= numClasses) throw new WeakSegException($"map class {c} is outside the foreground classes 1..{numClasses - 1}");
                _sum[c] += share;
                _count[c]++;
            }
        }

        public void Merge(Accumulator other)
        {
            for (int c = 0; c < numClasses; c++)
            {
                _sum[c] += other._sum[c];
                _count[c] += other._count[c];
            }
        }

        public ArtifactRateResult Result()
        {
            long pairs = _count.Sum();
            var byClass = Enumerable.Range(0, numClasses).Select(c => _count[c] > 0 ? _sum[c] / _count[c] : double.NaN).ToArray();
            return new ArtifactRateResult(pairs > 0 ? _sum.Sum() / pairs : double.NaN, byClass, pairs);
        }
    }
}
