using WeakSeg.Data;

namespace WeakSeg.Refinement.Saliency;

/// <summary>What to do when a saliency folder has no map for an image.</summary>
public enum SaliencyMissing
{
    /// <summary>One error line naming the missing (or wrong-size) file.</summary>
    Error,

    /// <summary>Estimate the map from the image (<see cref="SaliencyMaps.Estimate"/>); a wrong-size map is still an error.</summary>
    Compute,
}

/// <summary>
/// Where the saliency maps of a run come from: a folder of <c>NAME.png</c> (one 8-bit channel, 0–255, the image's size) with a policy for
/// missing maps, or, without a folder, the built-in estimator (<see cref="SaliencyMaps.Estimate"/>) on every image.
/// </summary>
public sealed record SaliencySource(string? Directory = null, SaliencyMissing Missing = SaliencyMissing.Error)
{
    /// <summary>Every map estimated from its image.</summary>
    public static SaliencySource Estimated => new();

    /// <summary>The folder must exist: a missing one is an error naming it.</summary>
    public SaliencySource Checked()
    {
        if (Directory is { } dir && !System.IO.Directory.Exists(dir)) throw WeakSegException.ForFile(Path.GetFullPath(dir), "saliency folder not found");
        if (!Enum.IsDefined(Missing)) throw new WeakSegException($"saliency-missing must be error or compute (got {Missing})");
        return this;
    }

    /// <summary>With a folder and <see cref="SaliencyMissing.Error"/>: every sample's map must exist and have its image's size (the
    /// image's header is read); the first problem is an error naming the file, before any training.</summary>
    public void CheckAll(IEnumerable<VocSample> samples)
    {
        if (Directory is not { } dir) return;
        foreach (var sample in samples)
        {
            var path = SaliencyMaps.PathOf(dir, sample.Name);
            if (Missing == SaliencyMissing.Compute && !File.Exists(path)) continue;
            var (width, height) = ImageCodec.ReadSize(sample.ImagePath);
            SaliencyMaps.Read(dir, sample.Name, height, width);
        }
    }

    /// <summary>The saliency map [H·W] in [0, 1] of image <paramref name="name"/>.</summary>
    public float[] Map(string name, RgbImage image)
    {
        if (Directory is { } dir && (Missing == SaliencyMissing.Error || File.Exists(SaliencyMaps.PathOf(dir, name))))
            return SaliencyMaps.Read(dir, name, image.Height, image.Width);
        return SaliencyMaps.Estimate(image.Pixels, image.Height, image.Width);
    }

    /// <summary>The map as a byte plane (<see cref="SaliencyMaps.ToPlane"/>) for <see cref="BatchLoader"/>.</summary>
    public LabelMap Plane(VocSample sample, RgbImage image) => new(image.Width, image.Height, SaliencyMaps.ToPlane(Map(sample.Name, image)));

    /// <summary>What the settings of a stage record: the folder (full path) or "estimated", and the policy.</summary>
    public string Describe() => Directory is null ? "estimated (spectral residual)" : Path.GetFullPath(Directory) + (Missing == SaliencyMissing.Compute ? " (missing: computed)" : "");
}
