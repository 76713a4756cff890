using System.Text.Json.Serialization;

namespace WeakSeg.Models.Vit;

/// <summary>How a <see cref="VisionTransformer"/> turns images into patch tokens.</summary>
public enum VitStem
{
    /// <summary>ViT/DeiT: one p×p stride-p convolution (<c>patch_embed.proj</c>).</summary>
    [JsonStringEnumMemberName("patch")]
    Patch,

    /// <summary>Hybrid (timm's HybridEmbed): the ImageNet ResNet-18's stem, layer1 and layer2 (stride 8, 128 channels) →
    /// 1×1 projection to the token width. Requires <see cref="VitConfig.PatchSize"/> = 8.</summary>
    [JsonStringEnumMemberName("resnet18-s8")]
    ResNet18Stride8,

    /// <summary>Hybrid with layer3 as well (stride 16, 256 channels). Requires <see cref="VitConfig.PatchSize"/> = 16.</summary>
    [JsonStringEnumMemberName("resnet18-s16")]
    ResNet18Stride16,
}

/// <summary>Names and strides of <see cref="VitStem"/>.</summary>
public static class VitStems
{
    /// <summary>Pixels per token the stem produces; null for <see cref="VitStem.Patch"/> (any patch size).</summary>
    public static int? Stride(VitStem stem) => stem switch
    {
        VitStem.ResNet18Stride8 => 8,
        VitStem.ResNet18Stride16 => 16,
        _ => null,
    };

    /// <summary>ResNet stages the hybrid stem runs (2 or 3); 0 for the patch stem.</summary>
    public static int ResNetStages(VitStem stem) => stem switch
    {
        VitStem.ResNet18Stride8 => 2,
        VitStem.ResNet18Stride16 => 3,
        _ => 0,
    };

    /// <summary>The command-line / JSON name: patch, resnet18-s8, resnet18-s16.</summary>
    public static string Name(VitStem stem) => stem switch
    {
        VitStem.ResNet18Stride8 => "resnet18-s8",
        VitStem.ResNet18Stride16 => "resnet18-s16",
        _ => "patch",
    };

    public static VitStem Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "patch" => VitStem.Patch,
        "resnet18-s8" => VitStem.ResNet18Stride8,
        "resnet18-s16" => VitStem.ResNet18Stride16,
        _ => throw new WeakSegException($"unknown backbone stem '{name}' (expected patch, resnet18-s8 or resnet18-s16)"),
    };
}
