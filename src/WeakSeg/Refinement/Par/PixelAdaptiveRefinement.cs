using TorchSharp;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Par;

/// <summary>
/// Pixel-adaptive refinement (PAR, ToCo): propagates class masks over a fixed stencil of neighbours with weights from colour
/// and position affinity. Neighbours of a pixel are the 8 cells of a 3×3 ring (row-major, centre skipped) at every dilation
/// d (K = 8 per dilation), read with replicate padding (image borders repeat, also when d exceeds the image size).
/// Affinity a_ij = softmax_j(κ_rgb) + w2·softmax_j(κ_pos) over the K neighbours, with
///   κ_rgb(i,j) = mean over colour channels of −(|I_j − I_i| / (σ_i + 1e-8) / w1)², σ_i = unbiased std of the K neighbour values;
///   κ_pos(j)   = −(dist_j / (σ_pos + 1e-8) / w1)², dist = d (axial) or d·√2 (diagonal), σ_pos = unbiased std of the K distances.
/// Masks are first resized bilinearly (align_corners true) to the image size, then updated <see cref="ParConfig.Iterations"/>
/// times by m_i ← Σ_j a_ij·m_j (neighbours only; masks are not renormalised). No trainable parameters.
/// </summary>
public sealed class PixelAdaptiveRefinement
{
    /// <summary>Ring offsets (row, column) in the order of the 3×3 selection kernel: row-major, centre skipped.</summary>
    public static readonly IReadOnlyList<(int Dy, int Dx)> RingOffsets =
        [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)];

    static readonly Scalar Two = 2.0.ToScalar();

    public PixelAdaptiveRefinement(ParConfig? config = null)
    {
        Config = config ?? ParConfig.Default;
        Config.EnsureValid();
    }

    public ParConfig Config { get; }

    /// <summary>The 3×3 neighbour-selection kernel [8, 1, 3, 3]: one-hot at each ring offset (ToCo's conv kernel).</summary>
    public static Tensor NeighbourKernel()
    {
        var kernel = torch.zeros(8, 1, 3, 3);
        for (int k = 0; k < 8; k++)
        {
            var (dy, dx) = RingOffsets[k];
            kernel[k, 0, dy + 1, dx + 1] = 1f;
        }
        return kernel;
    }

    /// <summary>Neighbour distances [K] (dilation-major, ring order): d for axial, d·√2 for diagonal neighbours.</summary>
    public Tensor NeighbourDistances()
    {
        var values = new float[Config.NeighbourCount];
        int i = 0;
        foreach (var d in Config.Dilations)
            foreach (var (dy, dx) in RingOffsets)
                values[i++] = dy != 0 && dx != 0 ? (float)(d * Math.Sqrt(2.0)) : d;
        return torch.tensor(values);
    }

    /// <summary>
    /// The K neighbours of every pixel, replicate-padded: x [B, C, H, W] → [B, C, K, H, W] (dilation-major, ring order).
    /// </summary>
    public Tensor Neighbours(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var padded = ReplicatePad(x, Config.Dilations.Max());
        return torch.stack(NeighbourViews(padded, x.shape[2], x.shape[3]), 2).MoveToOuterDisposeScope();
    }

    /// <summary>Affinity a [B, 1, K, H, W] of each pixel to its K neighbours, from images [B, 3, H, W] (any channel count).</summary>
    public Tensor Affinity(Tensor images)
    {
        CheckImages(images);
        using var scope = torch.NewDisposeScope();
        using var eps = 1e-8.ToScalar();
        using var invW1 = (1.0 / Config.W1).ToScalar();
        using var w2 = Config.W2.ToScalar();

        var neighbours = Neighbours(images);                                                  // [B, 3, K, H, W]
        var std = neighbours.std(2, unbiased: true, keepdim: true);                          // [B, 3, 1, H, W]
        var colour = neighbours.sub(images.unsqueeze(2)).abs_()
            .div_(std.add_(eps)).mul_(invW1).pow_(Two).neg_()
            .mean(new long[] { 1 }, keepdim: true);                                           // [B, 1, K, H, W]
        var colourWeights = colour.softmax(2);

        var distances = NeighbourDistances().to(images.device);                               // [K]
        var positionStd = distances.std(0, unbiased: true);
        var position = distances.div(positionStd.add(eps)).mul_(invW1).pow_(Two).neg_().softmax(0);   // [K]
        var affinity = colourWeights.add_(position.mul_(w2).reshape(1, 1, -1, 1, 1));
        return affinity.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One or more propagation steps m_i ← Σ_j a_ij·m_j. masks [B, C, H, W], affinity [B, 1, K, H, W] → [B, C, H, W].
    /// Accumulates neighbour by neighbour, so memory stays O(B·C·H·W) besides the affinity.
    /// </summary>
    public Tensor Propagate(Tensor masks, Tensor affinity, int iterations)
    {
        if (affinity.dim() != 5 || affinity.shape[0] != masks.shape[0] || affinity.shape[2] != Config.NeighbourCount
            || affinity.shape[3] != masks.shape[2] || affinity.shape[4] != masks.shape[3])
            throw new WeakSegException($"PAR affinity [{string.Join(", ", affinity.shape)}] does not fit masks [{string.Join(", ", masks.shape)}] with {Config.NeighbourCount} neighbours");
        using var scope = torch.NewDisposeScope();
        long h = masks.shape[2], w = masks.shape[3];
        int pad = Config.Dilations.Max();
        var weights = affinity.unbind(2).Select(a => a.contiguous()).ToArray();             // K × [B, 1, H, W]
        var current = masks.clone();
        var next = torch.empty_like(current);
        for (int it = 0; it < iterations; it++)
        {
            using var step = torch.NewDisposeScope();
            var padded = ReplicatePad(current, pad);
            var views = NeighbourViews(padded, h, w);
            next.zero_();
            for (int k = 0; k < views.Count; k++) next.addcmul_(views[k], weights[k], StableScalars.One);
            (current, next) = (next, current);                                              // two buffers, reused
        }
        return current.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// PAR forward: masks [B, C, h, w] are resized (bilinear, align_corners true) to the image size of images [B, 3, H, W],
    /// then propagated <see cref="ParConfig.Iterations"/> times. → [B, C, H, W].
    /// </summary>
    public Tensor Refine(Tensor images, Tensor masks)
    {
        CheckImages(images);
        if (masks.dim() != 4 || masks.shape[0] != images.shape[0])
            throw new WeakSegException($"PAR masks must be [B, C, h, w] with B = {images.shape[0]}; got [{string.Join(", ", masks.shape)}]");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var resized = ResizeMasks(masks, images.shape[2], images.shape[3]);
        if (Config.Iterations == 0) return resized.clone().MoveToOuterDisposeScope();
        var affinity = Affinity(images);
        return Propagate(resized, affinity, Config.Iterations).MoveToOuterDisposeScope();
    }

    /// <summary>Bilinear resize with align_corners true (PAR's mask resize); returns the input when the size already matches.</summary>
    public static Tensor ResizeMasks(Tensor masks, long height, long width) =>
        masks.shape[2] == height && masks.shape[3] == width
            ? masks.alias()
            : nn.functional.interpolate(masks, size: new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: true);

    static void CheckImages(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] < 1)
            throw new WeakSegException($"PAR images must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
    }

    /// <summary>Replicate padding by <paramref name="pad"/> on both spatial sides, by clamped indexing (any pad size).</summary>
    static Tensor ReplicatePad(Tensor x, int pad)
    {
        long h = x.shape[2], w = x.shape[3];
        using var first = 0L.ToScalar();
        using var lastRow = (h - 1).ToScalar();
        using var lastColumn = (w - 1).ToScalar();
        using var rows = torch.arange(-pad, h + pad, dtype: ScalarType.Int64, device: x.device).clamp_(first, lastRow);
        using var cols = torch.arange(-pad, w + pad, dtype: ScalarType.Int64, device: x.device).clamp_(first, lastColumn);
        using var padRows = x.index_select(2, rows);
        return padRows.index_select(3, cols);
    }

    /// <summary>Views of <paramref name="padded"/> (padded by the largest dilation) at every neighbour offset: K × [B, C, H, W].</summary>
    List<Tensor> NeighbourViews(Tensor padded, long h, long w)
    {
        int pad = Config.Dilations.Max();
        var views = new List<Tensor>(Config.NeighbourCount);
        foreach (var d in Config.Dilations)
            foreach (var (dy, dx) in RingOffsets)
                views.Add(padded.narrow(2, pad + dy * d, h).narrow(3, pad + dx * d, w));
        return views;
    }
}
