using TorchSharp;
using WeakSeg.Methods.MctFormer;
using static TorchSharp.torch;

namespace WeakSeg.Methods;

/// <summary>
/// Method-agnostic image-level inference (the MCTformer CAM protocol): for each scale (sides rounded to a multiple of the
/// patch size) and optionally its horizontal flip, the method's patch-grid maps are bilinearly resized to the image size and
/// summed (the image and its flip run as one batch); then the maps of the image's classes are selected and each is divided by its maximum (negatives clamped to 0).
/// Same arithmetic as <see cref="MctFormerInference"/>, for any <see cref="IWsssMethod"/>.
/// </summary>
public static class MultiScaleLocalization
{
    /// <summary>Sum over scales and flips of the method's maps at the image size: image [3, H, W] or [1, 3, H, W] → [K, H, W].</summary>
    public static Tensor AccumulatedMaps(IWsssMethod method, Tensor image, LocalizationOptions options)
    {
        options.EnsureValid();
        using var scope = torch.NewDisposeScope();
        var batch = image.dim() == 3 ? image.unsqueeze(0) : image.alias();
        if (batch.dim() != 4 || batch.shape[0] != 1 || batch.shape[1] != 3)
            throw new WeakSegException($"expected one image [3, H, W]; got [{string.Join(", ", image.shape)}]");
        long height = batch.shape[2], width = batch.shape[3];
        int patch = method.Backbone.PatchSize;
        var model = method.Model;
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
                // The image and its flip go through the model as one batch of 2.
                var input = options.Flip ? torch.cat(new[] { scaled, scaled.flip(3) }, 0) : scaled;
                var maps = method.PatchGridMaps(input, options.MapKind);                             // [1|2, K, h/p, w/p]
                var full = nn.functional.interpolate(maps, size: new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false);
                var view = options.Flip ? full.narrow(0, 0, 1) + full.narrow(0, 1, 1).flip(3) : full;
                sum = sum is null ? view : sum + view;
            }
            return sum!.squeeze(0).MoveToOuterDisposeScope();                                       // [K, H, W]
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>Normalised maps of <paramref name="classes"/> (foreground indices 1..K, in that order): [3, H, W] → [K', H, W].</summary>
    public static Tensor LocalizeImage(IWsssMethod method, Tensor image, IReadOnlyList<int> classes, LocalizationOptions options)
    {
        foreach (var c in classes)
            if (c < 1 || c > method.NumClasses) throw new WeakSegException($"class {c} is outside 1..{method.NumClasses}");
        using var scope = torch.NewDisposeScope();
        var maps = AccumulatedMaps(method, image, options);
        var selected = MctFormerInference.SelectClasses(maps, classes.Select(c => c - 1).ToArray());
        return MctFormerInference.NormalizePerClass(selected).MoveToOuterDisposeScope();
    }
}
