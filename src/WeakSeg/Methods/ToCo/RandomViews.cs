using TorchSharp;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>
/// Random views of each normalised batch crop [B, 3, S, S]: per view and image a RandomResizedCrop (area and log-aspect drawn as
/// torchvision, 10 tries, then the centre crop) resized bicubically back to S×S (skipped when the box is the whole crop), a
/// horizontal flip, and with probability p a colour jitter (brightness, contrast, saturation in a random order, on the
/// denormalised image, clamped to [0, 1]). Every draw comes from the step's managed RNG, so a resumed run repeats the views.
/// FSR's two global views (transforms.py MultiviewTransform) and ToCo's second global view and local-crop source (datasets/voc.py
/// global_view2, local_view) are made with it. Differences from the references: the views are cut from the loader's crop rather
/// than from the original image, and hue jitter, grayscale, blur and solarize are not applied.
/// </summary>
public static class RandomViews
{
    static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    /// <summary>images [B, 3, S, S] normalised → (view 1, view 2), each [B, 3, S, S] normalised.</summary>
    public static (Tensor View1, Tensor View2) Make(Tensor images, Random random, RandomViewOptions options)
    {
        using var scope = torch.NewDisposeScope();
        var first = View(images, random, options);
        var second = View(images, random, options);
        return (first.MoveToOuterDisposeScope(), second.MoveToOuterDisposeScope());
    }

    /// <summary>One view: images [B, 3, S, S] normalised → [B, 3, S, S] normalised.</summary>
    public static Tensor View(Tensor images, Random random, RandomViewOptions options)
    {
        if (images.dim() != 4 || images.shape[1] != 3) throw new WeakSegException($"random views need images [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        return Views(images, random, options).MoveToOuterDisposeScope();
    }

    static Tensor Views(Tensor images, Random random, RandomViewOptions options)
    {
        long b = images.shape[0], h = images.shape[2], w = images.shape[3];
        var mean = torch.tensor(Mean, device: images.device).reshape(1, 3, 1, 1);
        var std = torch.tensor(Std, device: images.device).reshape(1, 3, 1, 1);
        var rows = new List<Tensor>((int)b);
        for (long i = 0; i < b; i++)
        {
            var (top, left, ch, cw) = CropBox(random, h, w, options);
            var crop = images.narrow(0, i, 1).narrow(2, top, ch).narrow(3, left, cw);
            var view = ch == h && cw == w ? crop : nn.functional.interpolate(crop, size: new[] { h, w }, mode: InterpolationMode.Bicubic, align_corners: false);
            if (random.NextDouble() < options.HorizontalFlipProbability) view = view.flip(-1);
            if (random.NextDouble() < options.ColorJitterProbability)
            {
                var rgb = Clamp01(StableScalars.Add(view.mul(std), mean));
                rgb = Jitter(rgb, random, options);
                view = StableScalars.Add(rgb, mean.neg()).div(std);
            }
            rows.Add(view);
        }
        return torch.cat(rows, 0);
    }

    static readonly Scalar Zero = 0.0.ToScalar(), One = 1.0.ToScalar();

    static Tensor Clamp01(Tensor x) => x.clamp(Zero, One);

    /// <summary>torchvision RandomResizedCrop.get_params: (top, left, height, width).</summary>
    static (long Top, long Left, long Height, long Width) CropBox(Random random, long h, long w, RandomViewOptions options)
    {
        double area = h * w;
        double logMin = Math.Log(options.MinAspectRatio), logMax = Math.Log(options.MaxAspectRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (options.MinAreaScale + (options.MaxAreaScale - options.MinAreaScale) * random.NextDouble());
            double ratio = Math.Exp(logMin + (logMax - logMin) * random.NextDouble());
            long cw = (long)Math.Round(Math.Sqrt(target * ratio));
            long ch = (long)Math.Round(Math.Sqrt(target / ratio));
            if (cw > 0 && cw <= w && ch > 0 && ch <= h)
                return (random.NextInt64(h - ch + 1), random.NextInt64(w - cw + 1), ch, cw);
        }
        double inRatio = (double)w / h;
        long fw = w, fh = h;
        if (inRatio < options.MinAspectRatio) fh = (long)Math.Round(w / options.MinAspectRatio);
        else if (inRatio > options.MaxAspectRatio) fw = (long)Math.Round(h * options.MaxAspectRatio);
        return ((h - fh) / 2, (w - fw) / 2, fh, fw);
    }

    /// <summary>Brightness, contrast and saturation (torchvision ColorJitter semantics, random order) on rgb [1, 3, H, W] in [0, 1].</summary>
    static Tensor Jitter(Tensor rgb, Random random, RandomViewOptions options)
    {
        var order = new[] { 0, 1, 2 }.OrderBy(_ => random.Next()).ToArray();
        var luma = torch.tensor(new[] { 0.299f, 0.587f, 0.114f }, device: rgb.device).reshape(1, 3, 1, 1);
        foreach (var op in order)
        {
            double strength = op switch { 0 => options.Brightness, 1 => options.Contrast, _ => options.Saturation };
            if (strength <= 0) continue;
            double factor = 1 - strength + 2 * strength * random.NextDouble();
            using var keep = factor.ToScalar();
            using var blend = (1 - factor).ToScalar();
            var gray = rgb.mul(luma).sum(1, keepdim: true);                                     // [1, 1, H, W]
            rgb = op switch
            {
                0 => rgb.mul(keep),
                1 => StableScalars.Add(rgb.mul(keep), gray.mean().mul(blend)),
                _ => StableScalars.Add(rgb.mul(keep), gray.mul(blend)),
            };
            rgb = Clamp01(rgb);
        }
        return rgb;
    }
}

/// <summary>
/// A random view of a batch crop (<see cref="RandomViews"/>): RandomResizedCrop, horizontal flip and colour jitter. The defaults are FSR's
/// global crops (transforms.py MultiviewTransform); ToCo's class-token contrast sets its own (<see cref="ToCoConfig.GlobalView"/>).
/// </summary>
public sealed record RandomViewOptions
{
    /// <summary>RandomResizedCrop area range (0.32, 1.0).</summary>
    public double MinAreaScale { get; init; } = 0.32;

    /// <inheritdoc cref="MinAreaScale"/>
    public double MaxAreaScale { get; init; } = 1.0;

    /// <summary>RandomResizedCrop aspect-ratio range (3/4, 4/3), log-uniform.</summary>
    public double MinAspectRatio { get; init; } = 3.0 / 4.0;

    /// <inheritdoc cref="MinAspectRatio"/>
    public double MaxAspectRatio { get; init; } = 4.0 / 3.0;

    /// <summary>Horizontal flip probability (0.5).</summary>
    public double HorizontalFlipProbability { get; init; } = 0.5;

    /// <summary>Probability that colour jitter is applied to a view (0.5).</summary>
    public double ColorJitterProbability { get; init; } = 0.5;

    /// <summary>Brightness strength (0.4): factor uniform in [1 − s, 1 + s].</summary>
    public double Brightness { get; init; } = 0.4;

    /// <summary>Contrast strength (0.4).</summary>
    public double Contrast { get; init; } = 0.4;

    /// <summary>Saturation strength (0.2).</summary>
    public double Saturation { get; init; } = 0.2;

    /// <summary>Problems, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate(string field)
    {
        var errors = new List<string>();
        if (!(MinAreaScale > 0 && MinAreaScale <= MaxAreaScale && MaxAreaScale <= 1))
            errors.Add($"{field}.MinAreaScale/MaxAreaScale must satisfy 0 < min ≤ max ≤ 1 (got {MinAreaScale}, {MaxAreaScale})");
        if (!(MinAspectRatio > 0 && MinAspectRatio <= MaxAspectRatio) || double.IsInfinity(MaxAspectRatio))
            errors.Add($"{field}.MinAspectRatio/MaxAspectRatio must satisfy 0 < min ≤ max (got {MinAspectRatio}, {MaxAspectRatio})");
        foreach (var (name, p) in new[] { ("HorizontalFlipProbability", HorizontalFlipProbability), ("ColorJitterProbability", ColorJitterProbability) })
            if (!(p >= 0 && p <= 1)) errors.Add($"{field}.{name} must be in [0, 1] (got {p})");
        foreach (var (name, v) in new[] { ("Brightness", Brightness), ("Contrast", Contrast), ("Saturation", Saturation) })
            if (!(v >= 0 && v <= 1)) errors.Add($"{field}.{name} must be in [0, 1] (got {v})");
        return errors;
    }
}
