using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.MctFormer;

/// <summary>What <see cref="MctFormerModel.Forward"/> returns. Owns its tensors.</summary>
/// <param name="Backbone">Final tokens (no final norm) and per-block attention.</param>
/// <param name="ClassLogits">[B, C] mean over D of each class token.</param>
/// <param name="PatchCam">[B, C, h, w] V2 head on the patch grid; null for V1.</param>
/// <param name="PatchLogits">[B, C] global average pool of <paramref name="PatchCam"/>; null for V1.</param>
public sealed record MctFormerOutput(VitOutput Backbone, Tensor ClassLogits, Tensor? PatchCam, Tensor? PatchLogits) : IDisposable
{
    public MctFormerOutput MoveToOuterDisposeScope()
    {
        Backbone.MoveToOuterDisposeScope();
        ClassLogits.MoveToOuterDisposeScope();
        PatchCam?.MoveToOuterDisposeScope();
        PatchLogits?.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        Backbone.Dispose();
        ClassLogits.Dispose();
        PatchCam?.Dispose();
        PatchLogits?.Dispose();
    }
}

/// <summary>
/// MCTformer: a ViT with one class token per class. V1: class logits = mean over the embedding dim of each class token.
/// V2 adds <c>head</c> = Conv2d(D, C, 3, padding 1) on the patch grid (PatchCAM) with logits by global average pooling.
/// No final norm is applied (the <c>norm</c> weights exist only for checkpoint compatibility).
/// </summary>
public sealed class MctFormerModel : VisionTransformer
{
    readonly Conv2d? head;

    public MctFormerModel(MctFormerConfig config) : base(ValidatedBackbone(config), "MctFormer")
    {
        MethodConfig = config;
        if (config.Variant == MctFormerVariant.V2)
        {
            head = Conv2d(config.Backbone.EmbedDim, config.NumClasses, kernel_size: 3, stride: 1, padding: 1);
            register_module(nameof(head), head);
        }
    }

    static VitConfig ValidatedBackbone(MctFormerConfig config)
    {
        config.EnsureValid();
        return config.BackboneConfig;
    }

    public MctFormerConfig MethodConfig { get; }

    /// <summary>Backbone tokens without the final norm (as MCTformer's forward).</summary>
    public override VitOutput forward(Tensor images) => ForwardBlocks(images);

    /// <summary>Full MCTformer forward: tokens, attention, class logits and (V2) PatchCAM and patch logits.</summary>
    public MctFormerOutput Forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var backbone = ForwardBlocks(images);
        var classLogits = backbone.ClassTokens.mean(new long[] { -1 });                   // [B, C]
        Tensor? patchCam = null, patchLogits = null;
        if (head is not null)
        {
            patchCam = head.call(backbone.PatchGrid());                                     // [B, C, h, w]
            patchLogits = patchCam.mean(new long[] { 2, 3 });                               // [B, C]
        }
        return new MctFormerOutput(backbone, classLogits, patchCam, patchLogits).MoveToOuterDisposeScope();
    }
}
