using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormer;

/// <summary>Which MCTformer map multi-scale inference accumulates.</summary>
public enum MctFormerMapKind
{
    /// <summary>Class-to-patch attention of the last layers.</summary>
    ClassToPatch,

    /// <summary>V2: class-to-patch ⊙ ReLU(PatchCAM); V1: same as ClassToPatch.</summary>
    Fused,

    /// <summary>Patch affinity · Fused (the reference's final maps).</summary>
    Refined,
}

/// <summary>Options of <see cref="MctFormerInference"/>. Scale/flip defaults are unverified against the reference: treat them as options.</summary>
public sealed record MctFormerInferenceOptions
{
    /// <summary>Input scales; each scaled side is rounded to a multiple of the patch size so the patch grid covers the image.</summary>
    public IReadOnlyList<double> Scales { get; init; } = new[] { 1.0 };

    /// <summary>Also run the horizontally flipped image and add its (un-flipped) maps.</summary>
    public bool Flip { get; init; } = true;

    public MctFormerMapKind MapKind { get; init; } = MctFormerMapKind.Refined;

    /// <summary>Last layers of class-to-patch attention; null = the model's <see cref="MctFormerConfig.CamLayers"/>.</summary>
    public int? CamLayers { get; init; }
}

/// <summary>Image-level MCTformer localization maps: multi-scale + flip accumulation, per-class max normalisation, class selection.</summary>
public static class MctFormerInference
{
    /// <summary>
    /// Sum over scales (and flips) of the chosen map, each bilinearly resized to the image size. image [3, H, W] or [1, 3, H, W]
    /// (already normalised as for training) → [C, H, W], non-normalised. Runs under no_grad with the model in eval mode.
    /// </summary>
    public static Tensor AccumulatedMaps(MctFormerModel model, Tensor image, MctFormerInferenceOptions? options = null)
    {
        options ??= new MctFormerInferenceOptions();
        if (options.Scales.Count == 0 || options.Scales.Any(s => !(s > 0)))
            throw new WeakSegException("inference scales must be a non-empty list of positive numbers");
        using var scope = torch.NewDisposeScope();
        var batch = image.dim() == 3 ? image.unsqueeze(0) : image.alias();
        if (batch.dim() != 4 || batch.shape[0] != 1) throw new WeakSegException($"expected one image [3, H, W]; got [{string.Join(", ", image.shape)}]");
        int lastLayers = options.CamLayers ?? model.MethodConfig.CamLayers;
        long height = batch.shape[2], width = batch.shape[3];
        int patch = model.PatchSize;

        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            Tensor? sum = null;
            foreach (var scale in options.Scales)
            {
                long h = Math.Max(patch, (long)Math.Round(height * scale / patch) * patch);
                long w = Math.Max(patch, (long)Math.Round(width * scale / patch) * patch);
                var scaled = h == height && w == width ? batch
                    : nn.functional.interpolate(batch, size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
                var views = options.Flip ? new[] { false, true } : new[] { false };
                foreach (var flipped in views)
                {
                    var input = flipped ? scaled.flip(3) : scaled;
                    var maps = MapsAtPatchGrid(model, input, lastLayers, options.MapKind);                 // [1, C, h/p, w/p]
                    var full = nn.functional.interpolate(maps, size: new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false);
                    if (flipped) full = full.flip(3);
                    sum = sum is null ? full : WeakSeg.Models.StableScalars.Add(sum, full);   // not `+`: see StableScalars
                }
            }
            return sum!.squeeze(0).MoveToOuterDisposeScope();                                           // [C, H, W]
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    static Tensor MapsAtPatchGrid(MctFormerModel model, Tensor input, int lastLayers, MctFormerMapKind kind)
    {
        using var output = model.Forward(input);
        using var maps = MctFormerMaps.Localize(output, lastLayers);
        var chosen = kind switch
        {
            MctFormerMapKind.ClassToPatch => maps.ClassToPatch,
            MctFormerMapKind.Fused => maps.Maps,
            MctFormerMapKind.Refined => maps.Refined,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return chosen.clone();
    }

    /// <summary>Each class map divided by its maximum (negative values clamped to 0 first; an all-zero map stays zero). [C, H, W] → [C, H, W].</summary>
    public static Tensor NormalizePerClass(Tensor maps)
    {
        using var scope = torch.NewDisposeScope();
        var positive = maps.clamp_min(0);
        var max = positive.flatten(1).amax(new long[] { 1 }).reshape(-1, 1, 1);          // [C, 1, 1]
        var safe = torch.where(max > 0, max, torch.ones_like(max));
        return positive.div(safe).MoveToOuterDisposeScope();
    }

    /// <summary>The maps of the listed classes, in the given order. [C, H, W] → [K, H, W].</summary>
    public static Tensor SelectClasses(Tensor maps, IReadOnlyList<int> classes)
    {
        foreach (var c in classes)
            if (c < 0 || c >= maps.shape[0]) throw new WeakSegException($"class index {c} is outside 0..{maps.shape[0] - 1}");
        using var index = torch.tensor(classes.Select(c => (long)c).ToArray(), device: maps.device);
        return maps.index_select(0, index);
    }

    /// <summary>Accumulated maps of the image's classes, each normalised to max 1: [K, H, W] in the order of <paramref name="classes"/>.</summary>
    public static Tensor LocalizeImage(MctFormerModel model, Tensor image, IReadOnlyList<int> classes, MctFormerInferenceOptions? options = null)
    {
        using var scope = torch.NewDisposeScope();
        var maps = AccumulatedMaps(model, image, options);
        return NormalizePerClass(SelectClasses(maps, classes)).MoveToOuterDisposeScope();
    }
}
