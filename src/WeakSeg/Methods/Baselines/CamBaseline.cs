using TorchSharp;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Baselines;

/// <summary>Plain CAM on a ViT: one class token, linear classifier on the global average of the patch tokens.</summary>
public sealed record CamBaselineConfig : IMethodConfig<CamBaselineConfig>
{
    /// <summary>DeiT-S/16 at 224, as MCTformer's paper setup.</summary>
    public static CamBaselineConfig Paper => new();

    /// <summary>The small ViT of <see cref="VitConfig.Cpu128x4"/> (vit-cpu-128x4).</summary>
    public static CamBaselineConfig Cpu => new() { Backbone = VitConfig.Cpu128x4 };

    /// <summary>Foreground classes (VOC: 20), from the dataset (0 in presets).</summary>
    public int NumClasses { get; init; }

    /// <summary>Backbone (DeiT-S, as MCTformer, so the comparison is like for like). NumClassTokens is forced to 1.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Small;

    public VitConfig BackboneConfig => Backbone with { NumClassTokens = 1 };

    string IMethodConfig.Title => "CAM baseline";

    /// <summary>A baseline without official code here: <see cref="PresetThreshold.Common"/>.</summary>
    public PresetThreshold PseudoLabelThreshold => PresetThreshold.Common;

    public CamBaselineConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };

    public CamBaselineConfig WithImageSize(int imageSize) => this with { Backbone = Backbone with { ImageSize = imageSize } };

    public IReadOnlyList<string> Validate() => this.CommonErrors();
}

/// <param name="Backbone">Final tokens (after the final norm) and attention.</param>
/// <param name="Logits">[B, K] classifier on the mean patch token.</param>
/// <param name="Cams">[B, K, h, w] classifier weights · patch tokens (no bias).</param>
public sealed record CamBaselineOutput(VitOutput Backbone, Tensor Logits, Tensor Cams) : IDisposable
{
    public CamBaselineOutput MoveToOuterDisposeScope()
    {
        Backbone.MoveToOuterDisposeScope();
        Logits.MoveToOuterDisposeScope();
        Cams.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Backbone.Dispose();
        Logits.Dispose();
        Cams.Dispose();
    }
}

/// <summary>ViT + GAP + linear classifier; CAM<sub>k</sub> = w<sub>k</sub> · patch token. Keys: timm names plus <c>head.{weight,bias}</c>.</summary>
public sealed class CamBaselineModel(CamBaselineConfig config) : ClassifierBaselineModel<CamBaselineConfig>(config, "CamBaseline")
{
    public CamBaselineOutput Forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = ForwardFeatures(images);
        var pooled = backbone.PatchTokens.mean(new long[] { 1 });                       // [B, D]
        var logits = Head.call(pooled);                                                 // [B, K]
        var cams = ClassActivationMaps(backbone);                                       // [B, K, h, w]
        return new CamBaselineOutput(backbone, logits, cams).MoveToOuterDisposeScope();
    }

    /// <summary>CAM = head.weight · patch tokens, [B, K, h, w]. Its spatial mean plus the bias equals the logits.</summary>
    public Tensor ClassActivationMaps(VitOutput backbone)
    {
        using var scope = torch.NewDisposeScope();
        var perPatch = torch.matmul(backbone.PatchTokens, Head.weight.t());             // [B, N, K]
        return perPatch.transpose(1, 2)
            .reshape(backbone.PatchTokens.shape[0], MethodConfig.NumClasses, backbone.GridHeight, backbone.GridWidth)
            .MoveToOuterDisposeScope();
    }
}
