using WeakSeg.Data;

namespace WeakSeg.Evaluation;

/// <summary>
/// What the patch-to-patch attention that refines MCTformer-type maps (<see cref="Models.Vit.AttentionMaps.PatchAffinity"/>: Σ over
/// layers of the head-mean attention among patch tokens) looks at, measured against the ground-truth masks (so it reads pixel labels:
/// a diagnostic, not part of any weak path). Each patch's affinity row is normalised to sum 1 over the patches; every figure is a mean
/// over the labelled patches of all images. The refinement replaces a patch's score by the row-weighted mean of the map, so it can only
/// sharpen a map when a patch's mass stays on patches of its own class.
/// </summary>
/// <param name="Images">images measured</param>
/// <param name="Patches">labelled patches (a patch's label is the mask at its centre pixel; ignored pixels are left out)</param>
/// <param name="PatchShare">share of a patch's attention (all layers) on patch tokens rather than class tokens</param>
/// <param name="SelfMass">a row's mass on its own patch</param>
/// <param name="SelfChance">the same for a uniform row: 1 / N</param>
/// <param name="EffectiveSupport">exp(entropy of the row) / N: 1 = uniform over all N patches, 1/N = one patch</param>
/// <param name="ForegroundSameClass">a foreground patch's mass on patches of its class</param>
/// <param name="ForegroundSameClassChance">the same for a uniform row: the share of the image's patches that have its class</param>
/// <param name="BackgroundSameClass">a background patch's mass on background patches</param>
/// <param name="BackgroundSameClassChance">the share of background patches (the uniform row's value)</param>
/// <param name="NeighbourhoodMass">a row's mass on the 3×3 patches around it (itself included)</param>
/// <param name="NeighbourhoodChance">the same for a uniform row</param>
public sealed record PatchAffinityStatistics(int Images, long Patches, double PatchShare, double SelfMass, double SelfChance, double EffectiveSupport,
    double ForegroundSameClass, double ForegroundSameClassChance, double BackgroundSameClass, double BackgroundSameClassChance,
    double NeighbourhoodMass, double NeighbourhoodChance);

/// <summary>Accumulates <see cref="PatchAffinityStatistics"/> image by image (pure arithmetic on arrays; no tensors).</summary>
public sealed class PatchAffinityAccumulator
{
    int images;
    long patches, foreground, background;
    double patchShare, selfMass, selfChance, support, fgSame, fgChance, bgSame, bgChance, local, localChance;

    /// <summary>Adds one image.</summary>
    /// <param name="affinity">N×N row-major patch-to-patch attention (summed over layers), rows in raster order of the grid</param>
    /// <param name="rowTotals">each patch row's attention over all tokens (class tokens included), summed over the same layers</param>
    /// <param name="patchLabels">N labels on the same grid (0 = background, 255 = ignored)</param>
    /// <param name="gridWidth">patches per row</param>
    public void Add(ReadOnlySpan<float> affinity, ReadOnlySpan<float> rowTotals, ReadOnlySpan<byte> patchLabels, int gridWidth)
    {
        int n = patchLabels.Length;
        if (affinity.Length != n * n || rowTotals.Length != n || gridWidth < 1 || n % gridWidth != 0)
            throw new ArgumentException($"affinity {affinity.Length}, row totals {rowTotals.Length}, labels {n}, grid width {gridWidth} do not fit together");
        Span<int> perLabel = stackalloc int[256];
        foreach (var label in patchLabels) perLabel[label]++;
        for (int p = 0; p < n; p++)
        {
            var label = patchLabels[p];
            if (label == LabelMap.Ignore) continue;
            var row = affinity.Slice(p * n, n);
            double sum = 0;
            foreach (var v in row) sum += v;
            if (sum <= 0) continue;
            double same = 0, entropy = 0, near = 0;
            int nearCount = 0, pr = p / gridWidth, pc = p % gridWidth;
            for (int j = 0; j < n; j++)
            {
                double a = row[j] / sum;
                if (a > 0) entropy -= a * Math.Log(a);
                if (patchLabels[j] == label) same += a;
                if (Math.Abs(j / gridWidth - pr) <= 1 && Math.Abs(j % gridWidth - pc) <= 1) { near += a; nearCount++; }
            }
            patches++;
            patchShare += sum / rowTotals[p];
            selfMass += row[p] / sum;
            selfChance += 1.0 / n;
            support += Math.Exp(entropy) / n;
            local += near;
            localChance += (double)nearCount / n;
            double chance = (double)perLabel[label] / n;
            if (label == 0) { background++; bgSame += same; bgChance += chance; }
            else { foreground++; fgSame += same; fgChance += chance; }
        }
        images++;
    }

    public PatchAffinityStatistics Result()
    {
        static double Mean(double total, long count) => count == 0 ? double.NaN : total / count;
        return new PatchAffinityStatistics(images, patches, Mean(patchShare, patches), Mean(selfMass, patches), Mean(selfChance, patches), Mean(support, patches),
            Mean(fgSame, foreground), Mean(fgChance, foreground), Mean(bgSame, background), Mean(bgChance, background),
            Mean(local, patches), Mean(localChance, patches));
    }

    /// <summary>The label of each patch of a <paramref name="gridHeight"/>×<paramref name="gridWidth"/> grid over the mask: the mask's value
    /// at the patch's centre pixel.</summary>
    public static byte[] PatchLabels(LabelMap mask, int gridHeight, int gridWidth)
    {
        var labels = new byte[gridHeight * gridWidth];
        for (int r = 0; r < gridHeight; r++)
            for (int c = 0; c < gridWidth; c++)
            {
                int y = Math.Min(mask.Height - 1, (2 * r + 1) * mask.Height / (2 * gridHeight));
                int x = Math.Min(mask.Width - 1, (2 * c + 1) * mask.Width / (2 * gridWidth));
                labels[r * gridWidth + c] = mask.Labels[y * mask.Width + x];
            }
        return labels;
    }
}
