namespace WeakSeg.Models.ResNet;

/// <summary>
/// Layout of a ResNet built from basic blocks (torchvision's <c>ResNet</c> with <c>BasicBlock</c>): a 7×7/2 stem conv, BN,
/// ReLU, 3×3/2 max-pool, then four stages of 64, 128, 256, 512 channels whose first block halves the resolution (stages 2–4).
/// </summary>
public sealed record ResNetConfig
{
    /// <summary>Basic blocks per stage. torchvision's ResNet-18 is 2-2-2-2; the packaged ImageNet model has 2-2-2-3.</summary>
    public IReadOnlyList<int> BlocksPerStage { get; init; } = [2, 2, 2, 3];

    /// <summary>Stages built (1–4): 2 ends at stride 8, 3 at stride 16, 4 at stride 32. Later stages are not created.</summary>
    public int Stages { get; init; } = 4;

    /// <summary>Stages (2–4) whose stride-2 is replaced by dilation (torchvision <c>replace_stride_with_dilation</c>), e.g. {3} for the
    /// DeepLab-style CAM trunk: layer3 keeps stride 8 and uses dilation 2.</summary>
    public IReadOnlyList<int> DilatedStages { get; init; } = [];

    /// <summary>BatchNorm epsilon (the packaged model: 1e-5).</summary>
    public double BatchNormEps { get; init; } = 1e-5;

    /// <summary>Channels of stage s (1-based).</summary>
    public static int StageChannels(int stage) => 64 << (stage - 1);

    /// <summary>Output stride after the last built stage, with dilation taken into account.</summary>
    public int OutputStride
    {
        get
        {
            int stride = 4;
            for (int s = 2; s <= Stages; s++) if (!DilatedStages.Contains(s)) stride *= 2;
            return stride;
        }
    }

    /// <summary>Channels of the last built stage.</summary>
    public int OutputChannels => StageChannels(Stages);

    /// <summary>The packaged ImageNet ResNet-18 (2-2-2-3) with every stage.</summary>
    public static ResNetConfig PackagedResNet18 => new();

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (BlocksPerStage.Count != 4) e.Add($"BlocksPerStage must list 4 stages (got {BlocksPerStage.Count})");
        if (BlocksPerStage.Any(b => b < 1)) e.Add("BlocksPerStage entries must be ≥ 1");
        if (Stages is < 1 or > 4) e.Add($"Stages must be in 1..4 (got {Stages})");
        if (DilatedStages.Any(s => s is < 2 or > 4)) e.Add("DilatedStages may only name stages 2, 3 or 4");
        if (!(BatchNormEps > 0)) e.Add($"BatchNormEps must be > 0 (got {BatchNormEps})");
        return e;
    }

    public void EnsureValid()
    {
        var e = Validate();
        if (e.Count > 0) throw new WeakSegException("invalid ResNet configuration: " + string.Join("; ", e));
    }
}
