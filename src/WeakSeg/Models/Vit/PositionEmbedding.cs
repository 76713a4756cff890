using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Models.Vit;

/// <summary>How the patch rows of a position embedding are resized for another patch grid.</summary>
public enum PositionEmbeddingResize
{
    /// <summary>
    /// MCTformer/DINO rule: bicubic interpolation with scale_factor ((h + 0.1)/√N, (w + 0.1)/√N), align_corners false,
    /// no antialias (h, w = target grid). Required for parity with the MCTformer reference.
    /// </summary>
    DinoScaleFactor,

    /// <summary>timm rule (resample_abs_pos_embed): bicubic interpolation to the target size, align_corners false, antialias on.</summary>
    TimmSize,

    /// <summary>
    /// ToCo rule (its vit.py prepare_tokens): bicubic interpolation to the target size, align_corners false, no antialias,
    /// applied on every forward pass.
    /// </summary>
    BicubicSize,
    /// <summary>Segmenter rule (WeakTr online retraining, resize_pos_embed): bilinear interpolation to the target size,
    /// align_corners false, no antialias.</summary>
    BilinearSize,
}

/// <summary>Position-embedding resizing; the class-token (prefix) rows are never changed.</summary>
public static class PositionEmbedding
{
    /// <summary>
    /// Resizes <paramref name="posEmbed"/> [1, P+N, D] (P prefix rows, then a square √N×√N grid in row-major order)
    /// to [1, P + gridHeight·gridWidth, D]. Returns an alias when the grid is unchanged.
    /// </summary>
    public static Tensor Resize(Tensor posEmbed, int numPrefixTokens, int gridHeight, int gridWidth, PositionEmbeddingResize policy)
    {
        if (posEmbed.dim() != 3 || posEmbed.shape[0] != 1)
            throw new WeakSegException($"position embedding must be [1, P+N, D]; got [{string.Join(", ", posEmbed.shape)}]");
        if (gridHeight < 1 || gridWidth < 1) throw new WeakSegException($"target patch grid must be at least 1×1 (got {gridHeight}×{gridWidth})");
        long n = posEmbed.shape[1] - numPrefixTokens;
        long dim = posEmbed.shape[2];
        int side = (int)Math.Round(Math.Sqrt(n));
        if (n < 1 || (long)side * side != n)
            throw new WeakSegException($"position embedding has {n} patch rows after {numPrefixTokens} prefix rows; a square grid is required");
        if (side == gridHeight && side == gridWidth) return posEmbed.alias();

        using var scope = torch.NewDisposeScope();
        var prefix = posEmbed.narrow(1, 0, numPrefixTokens);                           // [1, P, D]
        var grid = posEmbed.narrow(1, numPrefixTokens, n)
            .reshape(1, side, side, dim).permute(0, 3, 1, 2);                            // [1, D, s, s]
        var originalDtype = grid.dtype;
        if (originalDtype != ScalarType.Float32 && originalDtype != ScalarType.Float64) grid = grid.to_type(ScalarType.Float32);
        Tensor resized = policy switch
        {
            PositionEmbeddingResize.DinoScaleFactor => nn.functional.interpolate(grid,
                scale_factor: new[] { (gridHeight + 0.1) / side, (gridWidth + 0.1) / side },
                mode: InterpolationMode.Bicubic, align_corners: false, recompute_scale_factor: false, antialias: false),
            PositionEmbeddingResize.TimmSize => nn.functional.interpolate(grid,
                size: new long[] { gridHeight, gridWidth },
                mode: InterpolationMode.Bicubic, align_corners: false, antialias: true),
            PositionEmbeddingResize.BicubicSize => nn.functional.interpolate(grid,
                size: new long[] { gridHeight, gridWidth },
                mode: InterpolationMode.Bicubic, align_corners: false, antialias: false),
            PositionEmbeddingResize.BilinearSize => nn.functional.interpolate(grid,
                size: new long[] { gridHeight, gridWidth },
                mode: InterpolationMode.Bilinear, align_corners: false),
            _ => throw new ArgumentOutOfRangeException(nameof(policy)),
        };                                                                               // [1, D, h, w]
        if (resized.shape[2] != gridHeight || resized.shape[3] != gridWidth)
            throw new WeakSegException($"position-embedding resize produced a {resized.shape[2]}×{resized.shape[3]} grid, expected {gridHeight}×{gridWidth}");
        var rows = resized.to_type(originalDtype).permute(0, 2, 3, 1).reshape(1, (long)gridHeight * gridWidth, dim);
        return torch.cat(new[] { prefix, rows }, 1).MoveToOuterDisposeScope();           // [1, P + h·w, D]
    }
}
