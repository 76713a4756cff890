using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Localization;

/// <summary>The CAM protocol's per-image steps after accumulation, for every method: pick the image's classes, normalise each map.</summary>
public static class ClassMaps
{
    /// <summary>
    /// The maps of the listed foreground classes, in the given order. Classes are one-based as in the dataset (class c is map c − 1;
    /// 0 is the background, which has no map). [K, H, W] → [K', H, W].
    /// </summary>
    /// <exception cref="WeakSegException">a class outside 1..K</exception>
    public static Tensor SelectClasses(Tensor maps, IReadOnlyList<int> classes)
    {
        long k = maps.shape[0];
        foreach (var c in classes)
            if (c < 1 || c > k) throw new WeakSegException($"class {c} is outside 1..{k}");
        using var index = torch.tensor(classes.Select(c => (long)c - 1).ToArray(), device: maps.device);
        return maps.index_select(0, index);
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
}
