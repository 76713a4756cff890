using TorchSharp;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Fsr;

/// <summary>Masking settings: ratio r, block side in patches, and the uncertain CAM band (low, high).</summary>
public sealed record MaskOptions(double Ratio = 0.4, int BlockPatches = 4, double LowThreshold = 0.2, double HighThreshold = 0.7)
{
    /// <summary>Problems for a patch grid of <paramref name="gridHeight"/>×<paramref name="gridWidth"/>, each naming the option.</summary>
    public IReadOnlyList<string> Validate(int gridHeight, int gridWidth)
    {
        var errors = new List<string>();
        if (!(Ratio > 0 && Ratio < 1)) errors.Add($"MaskRatio must be in (0, 1) (got {Ratio})");
        if (BlockPatches < 1) errors.Add($"MaskBlockPatches must be ≥ 1 (got {BlockPatches})");
        else if (gridHeight % BlockPatches != 0 || gridWidth % BlockPatches != 0)
            errors.Add($"MaskBlockPatches ({BlockPatches}) must divide the {gridHeight}×{gridWidth} patch grid");
        else if (Ratio > 0 && Ratio < 1)
        {
            int blocks = gridHeight / BlockPatches * (gridWidth / BlockPatches);
            if (MaskedBlocks(blocks) >= blocks)
                errors.Add($"MaskRatio ({Ratio}) with MaskBlockPatches ({BlockPatches}) masks all {blocks} blocks of the {gridHeight}×{gridWidth} patch grid; at least one block must stay unmasked");
        }
        if (!(LowThreshold < HighThreshold)) errors.Add($"mask thresholds out of order: MaskLowThreshold ({LowThreshold}) must be below MaskHighThreshold ({HighThreshold})");
        return errors;
    }

    /// <summary>Blocks masked out of <paramref name="blocks"/>: ceil(r·blocks), as the reference's remove_length.</summary>
    public int MaskedBlocks(int blocks) => (int)Math.Ceiling(blocks * Ratio);
}

/// <summary>
/// The uncertainty-guided mask generator (utils/masking.py MaskGenerator; Eqs. 2–4). The patch grid is cut into blocks of
/// <see cref="MaskOptions.BlockPatches"/>² patches; each block gets a score s = u + 1[low &lt; max_{c∈Y} CAM_c &lt; high] (uncertain
/// strategy; u ~ U(0, 1) is passed in) or s = u (random); the ceil(r·blocks) highest scores are masked.
/// </summary>
public static class FsrMasking
{
    /// <summary>
    /// cam [B, C, H, W] (the aux CAM at image size, in [0, 1]), classLabels [B, C], noise [B, M] with M = blocks of the grid
    /// (gridHeight/k × gridWidth/k) → mask [B, gridHeight, gridWidth] bool (true = masked). The CAM is restricted to the image's
    /// classes, maxed over classes, thresholded strictly, and downsampled to the block grid with nearest interpolation; a block
    /// mask is expanded to its k×k patches.
    /// </summary>
    public static Tensor Generate(Tensor cam, Tensor classLabels, Tensor noise, MaskStrategy strategy, MaskOptions options, int gridHeight, int gridWidth)
    {
        var errors = options.Validate(gridHeight, gridWidth);
        if (errors.Count > 0) throw new WeakSegException("invalid FSR masking: " + string.Join("; ", errors));
        int k = options.BlockPatches;
        long bh = gridHeight / k, bw = gridWidth / k, blocks = bh * bw;
        if (cam.dim() != 4 || classLabels.dim() != 2 || classLabels.shape[0] != cam.shape[0] || classLabels.shape[1] != cam.shape[1])
            throw new WeakSegException($"masking needs a CAM [B, C, H, W] and labels [B, C]; got [{string.Join(", ", cam.shape)}] and [{string.Join(", ", classLabels.shape)}]");
        long b = cam.shape[0];
        if (noise.dim() != 2 || noise.shape[0] != b || noise.shape[1] != blocks)
            throw new WeakSegException($"masking noise must be [{b}, {blocks}] (one value per block); got [{string.Join(", ", noise.shape)}]");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var score = noise.to_type(ScalarType.Float32).clone();
        if (strategy == MaskStrategy.Uncertain)
        {
            var valid = cam.mul(classLabels.to_type(cam.dtype).unsqueeze(-1).unsqueeze(-1)).amax(new long[] { 1 });   // [B, H, W]
            using var low = options.LowThreshold.ToScalar();
            using var high = options.HighThreshold.ToScalar();
            var roi = valid.gt(low).logical_and(valid.lt(high)).to_type(ScalarType.Float32).unsqueeze(1);
            var blockRoi = nn.functional.interpolate(roi, size: new[] { bh, bw }, mode: InterpolationMode.Nearest).reshape(b, blocks);
            score = StableScalars.Add(score, blockRoi);
        }
        int kept = (int)blocks - options.MaskedBlocks((int)blocks);
        var rank = score.argsort(1).argsort(1);                                                  // ascending: low scores are kept
        using var keptScalar = ((long)kept).ToScalar();
        var mask = rank.ge(keptScalar).reshape(b, bh, bw);
        var expanded = mask.repeat_interleave(k, 1).repeat_interleave(k, 2);                     // [B, gridHeight, gridWidth]
        return expanded.MoveToOuterDisposeScope();
    }

    /// <summary>Uniform noise [B, M] drawn from <paramref name="random"/> (the step's managed RNG, so a resumed run repeats it).</summary>
    public static Tensor Noise(Random random, long batch, long blocks)
    {
        var values = new float[batch * blocks];
        for (int i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble();
        return torch.tensor(values, new[] { batch, blocks });
    }
}
