using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>Local crops of ToCo's class-token contrast: the crops (view-major) and each view's flag.</summary>
/// <param name="Crops">[n·B, 3, s, s]: row k·B + i is crop k of image i</param>
/// <param name="Flags">[B, n + 2] float: 1 for the two global views (columns 0, 1) and the positive crops, 0 for the negative crops</param>
public sealed record LocalCropSet(Tensor Crops, Tensor Flags) : IDisposable
{
    public LocalCropSet MoveToOuterDisposeScope()
    {
        Crops.MoveToOuterDisposeScope();
        Flags.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Crops.Dispose();
        Flags.Dispose();
    }
}

/// <summary>
/// Where ToCo's local crops come from (utils/camutils.py cam_to_roi_mask2, crop_from_roi_neg): a three-level region map from the aux
/// CAM, and crops of a fixed size centred on randomly drawn pixels of the uncertain or background region.
/// </summary>
public static class LocalCrops
{
    /// <summary>Region level of a pixel: background (valid CAM ≤ low).</summary>
    public const long Background = 0;

    /// <summary>Region level of a pixel: uncertain (between the thresholds).</summary>
    public const long Uncertain = 1;

    /// <summary>Region level of a pixel: confident foreground (valid CAM ≥ high).</summary>
    public const long Foreground = 2;

    /// <summary>
    /// cam_to_roi_mask2: the CAM restricted to the image's classes (cam × label), its max over classes v; region 0 where v ≤
    /// <paramref name="low"/>, 2 where v ≥ <paramref name="high"/>, else 1. cam [B, C, H, W], labels [B, C] → [B, H, W] int64.
    /// </summary>
    public static Tensor RegionOfInterest(Tensor cam, Tensor labels, double low, double high)
    {
        if (cam.dim() != 4 || labels.dim() != 2 || labels.shape[0] != cam.shape[0] || labels.shape[1] != cam.shape[1])
            throw new WeakSegException($"region map needs a CAM [B, C, H, W] and labels [B, C]; got [{string.Join(", ", cam.shape)}] and [{string.Join(", ", labels.shape)}]");
        if (!(low < high)) throw new WeakSegException($"region map thresholds out of order: low ({low}) must be below high ({high})");
        using var scope = torch.NewDisposeScope();
        var valid = cam.mul(labels.to_type(cam.dtype).unsqueeze(-1).unsqueeze(-1));
        var (v, _) = valid.max(1);
        using var lowScalar = low.ToScalar();
        using var highScalar = high.ToScalar();
        using var background = Background.ToScalar();
        using var foreground = Foreground.ToScalar();
        var region = torch.ones_like(v, dtype: ScalarType.Int64)                            // Uncertain = 1
            .masked_fill(v.le(lowScalar), background)
            .masked_fill(v.ge(highScalar), foreground);
        return region.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// crop_from_roi_neg: for each image, <paramref name="count"/> centres are drawn without replacement (from
    /// <paramref name="random"/>) among the interior pixels (margin = ⌊size/2⌋ on every side) whose region is ≤ 1 — or among all
    /// interior pixels when fewer than <paramref name="count"/> qualify; the crop [size × size] of <paramref name="images"/> is
    /// centred on the drawn pixel (its top-left corner is the pixel minus the margin). A crop is negative (flag 0) when its mean
    /// region value is ≤ <paramref name="negativeMeanRegion"/> (reference 0.2). images [B, 3, H, W], region [B, H, W].
    /// </summary>
    public static LocalCropSet Crop(Tensor images, Tensor region, int count, int size, double negativeMeanRegion, Random random)
    {
        if (images.dim() != 4 || region.dim() != 3 || region.shape[0] != images.shape[0] || region.shape[1] != images.shape[2] || region.shape[2] != images.shape[3])
            throw new WeakSegException($"local crops need images [B, 3, H, W] and a region map [B, H, W] of the same size; got [{string.Join(", ", images.shape)}] and [{string.Join(", ", region.shape)}]");
        if (count < 1) throw new WeakSegException($"local crop count must be ≥ 1 (got {count})");
        long b = images.shape[0], h = images.shape[2], w = images.shape[3];
        int margin = size / 2;
        long interiorHeight = h - 2L * margin, interiorWidth = w - 2L * margin;
        if (size < 1 || interiorHeight < 1 || interiorWidth < 1 || interiorHeight * interiorWidth < count)
            throw new WeakSegException($"{count} local crops of {size}×{size} need at least {count} interior pixels in a {h}×{w} image (margin {margin}); got {Math.Max(0, interiorHeight) * Math.Max(0, interiorWidth)}");

        using var scope = torch.NewDisposeScope();
        long[] levels = region.to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        var flags = new float[b * (count + 2)];
        Array.Fill(flags, 1f);
        var pieces = new Tensor[count * b];
        for (long i = 0; i < b; i++)
        {
            long offset = i * h * w;
            var candidates = new List<(long Row, long Col)>();
            for (long r = 0; r < interiorHeight; r++)
                for (long c = 0; c < interiorWidth; c++)
                    if (levels[offset + (r + margin) * w + c + margin] <= Uncertain) candidates.Add((r, c));
            if (candidates.Count < count)
            {
                candidates.Clear();
                for (long r = 0; r < interiorHeight; r++)
                    for (long c = 0; c < interiorWidth; c++) candidates.Add((r, c));
            }
            for (int k = 0; k < count; k++)
            {
                int pick = k + random.Next(candidates.Count - k);              // partial Fisher–Yates: draws without replacement
                (candidates[k], candidates[pick]) = (candidates[pick], candidates[k]);
                var (top, left) = candidates[k];                                // interior position = the crop's top-left corner
                pieces[k * b + i] = images.narrow(0, i, 1).narrow(2, top, size).narrow(3, left, size);
                long sum = 0;
                for (long r = top; r < top + size; r++)
                    for (long c = left; c < left + size; c++) sum += levels[offset + r * w + c];
                if (sum / (double)(size * size) <= negativeMeanRegion) flags[i * (count + 2) + k + 2] = 0f;
            }
        }
        var crops = torch.cat(pieces, 0);
        var flagTensor = torch.tensor(flags, device: images.device).reshape(b, count + 2);
        return new LocalCropSet(crops, flagTensor).MoveToOuterDisposeScope();
    }
}
