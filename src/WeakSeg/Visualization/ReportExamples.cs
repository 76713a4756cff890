using SkiaSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;

namespace WeakSeg.Visualization;

/// <summary>An example image of a report and why it was chosen ("random" or "worst"); <see cref="Score"/> is what ranked it.</summary>
public sealed record ChosenExample(string Name, string Reason, double? Score);

/// <summary>
/// The example images of the reports: a fixed, seeded choice, and their tiles (thumbnails embedded as PNG data URIs).
/// </summary>
public static class ReportExamples
{
    /// <summary>Largest side of a tile in pixels (larger images are shrunk, so a VOC-sized report stays a few MB).</summary>
    public const int TileSide = 160;

    /// <summary>
    /// A seeded choice from <paramref name="names"/>: the images are shuffled with <see cref="DeterministicRandom"/> of
    /// <paramref name="seed"/>; the first <paramref name="pool"/> of them are the candidates; the first <paramref name="random"/>
    /// candidates are taken, then the <paramref name="worst"/> other candidates with the lowest <paramref name="score"/> (images without
    /// a score are never "worst"). The same names, seed and scores give the same choice.
    /// </summary>
    public static IReadOnlyList<ChosenExample> Choose(IReadOnlyList<string> names, Func<string, double?> score, long seed,
        int random = 4, int worst = 2, int pool = 200)
    {
        var order = new DeterministicRandom(seed).Permutation(names.Count);
        var candidates = order.Take(Math.Min(pool, names.Count)).Select(i => names[i]).ToList();
        var chosen = candidates.Take(random).Select(n => new ChosenExample(n, "random", score(n))).ToList();
        var ranked = candidates.Skip(random).Select(n => (Name: n, Score: score(n)))
            .Where(c => c.Score is { } s && double.IsFinite(s)).OrderBy(c => c.Score!.Value).ThenBy(c => c.Name, StringComparer.Ordinal);
        chosen.AddRange(ranked.Take(worst).Select(c => new ChosenExample(c.Name, "worst", c.Score)));
        return chosen;
    }

    /// <summary>Mean IoU of one label map against its ground truth (classes with a union, as the evaluator's default); null when either is
    /// missing or their sizes differ.</summary>
    public static double? ImageMeanIou(LabelMap? prediction, LabelMap? groundTruth, int numClassesWithBackground)
    {
        if (prediction is null || groundTruth is null || prediction.Width != groundTruth.Width || prediction.Height != groundTruth.Height) return null;
        var matrix = new ConfusionMatrix(numClassesWithBackground);
        matrix.Add(groundTruth.Labels, prediction.Labels);
        var miou = matrix.ComputeMetrics().MeanIou;
        return double.IsFinite(miou) ? miou : null;
    }

    /// <summary>A label PNG, or null when the file does not exist.</summary>
    public static LabelMap? ReadLabels(string? directory, string name)
    {
        if (directory is null) return null;
        var path = Path.Combine(directory, name + ".png");
        return File.Exists(path) ? LabelPng.Read(path) : null;
    }

    /// <summary>A tile cell: the image as a thumbnail PNG with a caption below it.</summary>
    public static string Cell(RgbImage tile, string caption) =>
        $"<td>{ReportHtml.Image(EncodeThumbnail(tile), caption)}{ReportHtml.Escape(caption)}</td>";

    /// <summary>The largest value over the map planes of an image, resized to the image and drawn as a heat map over it; null when the
    /// folder has no maps for the image.</summary>
    public static RgbImage? MapTile(RgbImage image, string? mapsDirectory, string name)
    {
        if (mapsDirectory is null || !CamMapFile.Exists(mapsDirectory, name)) return null;
        var maps = CamMapFile.Read(mapsDirectory, name);
        var strongest = new float[maps.PlaneSize];
        for (int i = 0; i < maps.Classes.Length; i++)
        {
            var plane = maps.Plane(i);
            for (int p = 0; p < strongest.Length; p++) strongest[p] = Math.Max(strongest[p], plane[p]);
        }
        return OverlayRenderer.HeatTile(image, OverlayRenderer.ResizeBilinear(strongest, maps.Width, maps.Height, image.Width, image.Height));
    }

    /// <summary>PNG of the tile shrunk (high-quality filtering) so that its larger side is at most <see cref="TileSide"/>.</summary>
    public static byte[] EncodeThumbnail(RgbImage tile)
    {
        double scale = Math.Min(1.0, (double)TileSide / Math.Max(tile.Width, tile.Height));
        if (scale >= 1.0) return ImageCodec.Encode(tile, SKEncodedImageFormat.Png);
        int w = Math.Max(1, (int)Math.Round(tile.Width * scale)), h = Math.Max(1, (int)Math.Round(tile.Height * scale));
        using var source = OverlayRenderer.ToBitmap(tile);
        using var small = source.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKCubicResampler.Mitchell));
        return ImageCodec.Encode(OverlayRenderer.FromBitmap(small), SKEncodedImageFormat.Png);
    }
}
