namespace WeakSeg.Training.Bench;

/// <summary>Dimensions that set a ViT's matmul FLOPs (heads do not change the count).</summary>
/// <param name="ImageHeight">input height in pixels (multiple of the patch size)</param>
/// <param name="ImageWidth">input width in pixels</param>
/// <param name="PatchSize">patch side p</param>
/// <param name="EmbedDim">token width D</param>
/// <param name="Depth">number of blocks L</param>
/// <param name="MlpRatio">MLP hidden width = MlpRatio·D</param>
/// <param name="ClassTokens">class tokens C prepended to the patch tokens (1 for DeiT, K for MCTformer)</param>
/// <param name="InChannels">image channels (3)</param>
public sealed record VitDims(int ImageHeight, int ImageWidth, int PatchSize, int EmbedDim, int Depth,
    double MlpRatio = 4.0, int ClassTokens = 1, int InChannels = 3)
{
    public long Patches => (long)(ImageHeight / PatchSize) * (ImageWidth / PatchSize);
    public long Tokens => Patches + ClassTokens;

    /// <summary>DeiT-S/16 (MCTformer backbone) at <paramref name="size"/>² with <paramref name="classTokens"/> class tokens.</summary>
    public static VitDims DeitSmall(int size = 224, int classTokens = 1) => new(size, size, 16, 384, 12, 4.0, classTokens);
}

/// <summary>
/// Matmul FLOP count of a ViT (1 multiply-add = 2 FLOPs; norms, softmax, GELU, residual adds are O(T·D) and left out).
/// With N patches, T = N + C tokens, width D, MLP width M = r·D, depth L, per image:
///   patch embedding      2 · N · (c·p²) · D
///   per block:  qkv      2 · T · D · 3D
///               q·kᵀ     2 · T · T · D
///               attn·v   2 · T · T · D
///               proj     2 · T · D · D
///               mlp      2 · T · D · M · 2
///   forward = patch + L · block + extra (method head, e.g. MCTformer-V2's 3×3 conv: 2 · N · 9 · D · K)
/// A training step costs ≈ 3 × forward (backward computes two matmuls per forward matmul: input and weight gradients).
/// </summary>
public static class VitFlops
{
    public static double PatchEmbed(VitDims d) => 2.0 * d.Patches * d.InChannels * d.PatchSize * d.PatchSize * d.EmbedDim;

    public static double Block(VitDims d)
    {
        double t = d.Tokens, D = d.EmbedDim, m = Math.Round(d.MlpRatio * d.EmbedDim);
        return 2 * t * D * 3 * D + 2 * t * t * D + 2 * t * t * D + 2 * t * D * D + 2 * t * D * m * 2;
    }

    /// <summary>Forward FLOPs per image; <paramref name="extraForwardFlops"/> adds method heads.</summary>
    public static double Forward(VitDims d, double extraForwardFlops = 0) => PatchEmbed(d) + d.Depth * Block(d) + extraForwardFlops;

    /// <summary>Forward + backward FLOPs per image ≈ 3 × forward.</summary>
    public static double TrainStep(VitDims d, double extraForwardFlops = 0) => 3 * Forward(d, extraForwardFlops);

    /// <summary>MCTformer-V2 head: Conv2d(D, K, 3, padding 1) on the h×w patch grid.</summary>
    public static double ConvHead3x3(VitDims d, int classes) => 2.0 * d.Patches * 9 * d.EmbedDim * classes;
}

/// <summary>Figures of <c>bench train</c>.</summary>
/// <param name="ImagesPerSecond">measured training throughput</param>
/// <param name="AchievedGflops">images/s × training FLOPs per image / 1e9</param>
/// <param name="GemmGflops">the 1024³ matmul ceiling</param>
/// <param name="FractionOfGemm">achieved ÷ GEMM</param>
public sealed record TrainThroughput(double ImagesPerSecond, double TrainFlopsPerImage, double AchievedGflops, double GemmGflops, double FractionOfGemm)
{
    public static TrainThroughput Compute(double imagesPerSecond, double trainFlopsPerImage, double gemmGflops)
    {
        double achieved = imagesPerSecond * trainFlopsPerImage / 1e9;
        return new TrainThroughput(imagesPerSecond, trainFlopsPerImage, achieved, gemmGflops, gemmGflops > 0 ? achieved / gemmGflops : double.NaN);
    }
}
