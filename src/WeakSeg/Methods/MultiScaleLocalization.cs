using TorchSharp;
using WeakSeg.Methods.Localization;
using static TorchSharp.torch;

namespace WeakSeg.Methods;

/// <summary>
/// Method-agnostic image-level inference (the MCTformer CAM protocol): for each scale (sides rounded to a multiple of the
/// patch size) and optionally its horizontal flip, the method's patch-grid maps are bilinearly resized to the image size and
/// summed (<see cref="MultiScaleCam"/>); then the maps of the image's classes are selected and each is divided by its maximum
/// (negatives clamped to 0; <see cref="ClassMaps"/>). For any <see cref="IWsssMethod"/>.
/// </summary>
public static class MultiScaleLocalization
{
    /// <summary>Sum over scales and flips of the method's maps at the image size: image [3, H, W] or [1, 3, H, W] → [K, H, W].</summary>
    public static Tensor AccumulatedMaps(IWsssMethod method, Tensor image, LocalizationOptions options)
    {
        options.EnsureValid();
        return MultiScaleCam.Accumulate(method.Model, method.Config.MapStride, image, options.Scales, options.Flip,
            views => method.PatchGridMaps(views, options.MapKind));
    }

    /// <summary>Normalised maps of <paramref name="classes"/> (foreground classes 1..K, in that order): [3, H, W] → [K', H, W].</summary>
    public static Tensor LocalizeImage(IWsssMethod method, Tensor image, IReadOnlyList<int> classes, LocalizationOptions options)
    {
        foreach (var c in classes)
            if (c < 1 || c > method.NumClasses) throw new WeakSegException($"class {c} is outside 1..{method.NumClasses}");
        using var scope = torch.NewDisposeScope();
        var maps = AccumulatedMaps(method, image, options);
        return ClassMaps.NormalizePerClass(ClassMaps.SelectClasses(maps, classes)).MoveToOuterDisposeScope();
    }
}
