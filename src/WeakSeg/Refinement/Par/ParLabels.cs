using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Par;

/// <summary>
/// Labels from class maps refined by PAR with a constant background score, one image at a time (the per-image part of ToCo's
/// refine_cams_with_bkg_v2, used by the single-stage methods' training labels and by <see cref="ParPseudoLabelRefiner"/>).
/// </summary>
public static class ParLabels
{
    /// <summary>
    /// For each background level: the image and the maps are downscaled by <paramref name="downScale"/> (bilinear, align_corners
    /// false; sizes H / d, W / d rounded down), the stack [background = level; maps] is softmaxed over its planes, all stacks are
    /// refined by PAR together (one affinity), upsampled back to H×W (bilinear) and argmaxed.
    /// image01 [1, 3, H, W] in [0, 1], maps [1, K', H, W] → one [1, H, W] int64 per level: 0 = background, k = the k-th map plane.
    /// </summary>
    public static Tensor[] ArgmaxPerLevel(PixelAdaptiveRefinement par, Tensor image01, Tensor maps, IReadOnlyList<double> levels, int downScale)
    {
        if (downScale < 1) throw new WeakSegException($"PAR down-scale must be ≥ 1 (got {downScale})");
        if (levels.Count == 0) throw new WeakSegException("PAR labels need at least one background level");
        if (image01.dim() != 4 || image01.shape[0] != 1 || maps.dim() != 4 || maps.shape[0] != 1
            || maps.shape[2] != image01.shape[2] || maps.shape[3] != image01.shape[3])
            throw new WeakSegException($"PAR labels need one image [1, 3, H, W] and its maps [1, K, H, W] of the same size; got [{string.Join(", ", image01.shape)}] and [{string.Join(", ", maps.shape)}]");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long h = image01.shape[2], w = image01.shape[3];
        long hs = h / downScale, ws = w / downScale;
        if (hs < 1 || ws < 1) throw new WeakSegException($"image {h}×{w} is too small for PAR down-scale {downScale}");
        var small = Resize(image01.to_type(ScalarType.Float32), hs, ws);
        var smallMaps = Resize(maps.to_type(ScalarType.Float32), hs, ws)[0];                  // [K', hs, ws]
        long planes = smallMaps.shape[0] + 1;
        var stacks = levels.Select(level =>
        {
            using var value = level.ToScalar();
            var background = torch.full(new[] { 1L, hs, ws }, value, dtype: ScalarType.Float32, device: maps.device);
            return torch.cat(new[] { background, smallMaps }, 0).softmax(0);
        }).ToArray();
        var refined = par.Refine(small, torch.cat(stacks, 0).unsqueeze(0));                   // [1, L·(K'+1), hs, ws]
        var upsampled = Resize(refined, h, w);
        return Enumerable.Range(0, levels.Count)
            .Select(l => upsampled.narrow(1, l * planes, planes).argmax(1).MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>
    /// ToCo's two-level rule: L = L_high, except ignore where L_high is background and background where both are.
    /// Index maps of any shape (int64) → the same shape.
    /// </summary>
    public static Tensor CombineLevels(Tensor high, Tensor low, long ignoreIndex = 255)
    {
        using var scope = torch.NewDisposeScope();
        using var ignore = ignoreIndex.ToScalar();
        using var zero = 0L.ToScalar();
        var result = high.masked_fill(high.eq(zero), ignore);
        result.masked_fill_(high.add(low).eq(zero), zero);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Bilinear resize (align_corners false); the input itself when the size already matches (an identity resize); no planes stay no planes.</summary>
    static Tensor Resize(Tensor x, long h, long w) =>
        x.shape[2] == h && x.shape[3] == w ? x.alias()
            : x.shape[1] == 0 ? torch.empty(new[] { x.shape[0], 0L, h, w }, dtype: x.dtype, device: x.device)    // an image without classes
            : nn.functional.interpolate(x, size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
}
