using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.MoRe;

/// <summary>What <see cref="MoReNetwork.forward"/> returns. Owns its tensors.</summary>
/// <param name="ClassLogits">[B, C] classifier on the global max pool of the final patch tokens</param>
/// <param name="AuxLogits">[B, C] aux classifier on the global max pool of the aux-layer tokens</param>
/// <param name="Segmentation">[B, C+1, h, w] LargeFOV logits</param>
/// <param name="FeatureMap">[B, D, h, w] final patch tokens (after the final norm)</param>
/// <param name="AuxFeatureMap">[B, D, h, w] aux-layer patch tokens (no norm)</param>
/// <param name="ClassTokens">[B, C, D] the per-class tokens after the final norm (register tokens dropped)</param>
/// <param name="AttributeTokens">[B, C, D] the class tokens after GCR (equal to <paramref name="ClassTokens"/> without GCR)</param>
public sealed record MoReOutput(Tensor ClassLogits, Tensor AuxLogits, Tensor Segmentation, Tensor FeatureMap, Tensor AuxFeatureMap,
    Tensor ClassTokens, Tensor AttributeTokens) : IDisposable
{
    IEnumerable<Tensor> All => ReferenceEquals(AttributeTokens, ClassTokens)
        ? [ClassLogits, AuxLogits, Segmentation, FeatureMap, AuxFeatureMap, ClassTokens]
        : [ClassLogits, AuxLogits, Segmentation, FeatureMap, AuxFeatureMap, ClassTokens, AttributeTokens];

    public MoReOutput MoveToOuterDisposeScope()
    {
        foreach (var t in All) t.MoveToOuterDisposeScope();
        return this;
    }

    public void Dispose()
    {
        foreach (var t in All) t.Dispose();
    }
}

/// <summary>
/// The MoRe network (model/model_mal.py) on the shared ViT: the ToCo heads (GMP <c>classifier</c>, <c>aux_classifier</c> on
/// block <see cref="MoReConfig.AuxLayer"/>, LargeFOV <c>decoder</c>) plus R register + C class tokens in the encoder sequence
/// (one position embedding for all of them, DINO-style resizing) and the GCR <c>graph_layer</c> over the class tokens and the
/// detached final patch tokens. Keys: encoder.* (encoder.cls_token [1, R+C, D]), classifier.weight, aux_classifier.weight,
/// decoder.conv6/7/8.weight, graph_layer.*.
/// </summary>
public sealed class MoReNetwork : Module<Tensor, MoReOutput>
{
    readonly VisionTransformer encoder;
    readonly Conv2d classifier;
    readonly Conv2d aux_classifier;
    readonly LargeFovHead decoder;
    readonly GraphClassAggregation graph_layer;

    public MoReNetwork(MoReConfig config) : base("MoRe")
    {
        config.EnsureValid();
        Config = config;
        encoder = new VisionTransformer(config.BackboneConfig);
        int d = config.Backbone.EmbedDim;
        classifier = Conv2d(d, config.NumClasses, kernel_size: 1, bias: false);
        aux_classifier = Conv2d(d, config.NumClasses, kernel_size: 1, bias: false);
        decoder = new LargeFovHead(d, config.NumClasses + 1, config.DecoderWidth, config.DecoderDilation);
        graph_layer = new GraphClassAggregation(d, config.GcrTopKRatio, config.GcrScore);
        RegisterComponents();
    }

    public MoReConfig Config { get; }

    public VisionTransformer Encoder => encoder;

    public GraphClassAggregation GraphLayer => graph_layer;

    /// <summary>Parameters trained at the head rate: classifiers, decoder and GCR (everything outside the encoder).</summary>
    public bool IsHeadParameter(string name) => !name.StartsWith("encoder.", StringComparison.Ordinal);

    (VitOutput Output, Tensor FeatureMap, Tensor AuxFeatureMap) Features(Tensor images)
    {
        var (output, block) = encoder.ForwardFeaturesWithBlock(images, Config.AuxLayer);
        long b = images.shape[0];
        int h = output.GridHeight, w = output.GridWidth;
        var fmap = output.PatchGrid();
        var auxTokens = block.narrow(1, encoder.NumClassTokens, (long)h * w);
        var auxMap = auxTokens.transpose(1, 2).reshape(b, auxTokens.shape[2], h, w);
        return (output, fmap, auxMap);
    }

    /// <summary>Full forward; <paramref name="withGcr"/> false leaves the class tokens as they leave the encoder.</summary>
    public MoReOutput Forward(Tensor images, bool withGcr = true)
    {
        using var scope = torch.NewDisposeScope();
        var (output, fmap, auxMap) = Features(images);
        var classLogits = classifier.call(functional.adaptive_max_pool2d(fmap, [1L, 1L])).flatten(1);
        var auxLogits = aux_classifier.call(functional.adaptive_max_pool2d(auxMap, [1L, 1L])).flatten(1);
        var segmentation = decoder.call(fmap);
        int r = Config.RegisterTokens;
        var classTokens = output.ClassTokens.narrow(1, r, Config.NumClasses);                   // [B, C, D]
        var attributes = withGcr ? graph_layer.call(classTokens, output.PatchTokens) : classTokens;
        return new MoReOutput(classLogits, auxLogits, segmentation, fmap, auxMap, classTokens, attributes).MoveToOuterDisposeScope();
    }

    /// <summary>Full forward, with GCR when <see cref="MoReConfig.UseGcr"/>.</summary>
    public override MoReOutput forward(Tensor images) => Forward(images, Config.UseGcr);

    /// <summary>CAMs at the patch grid, detached: (cam, aux cam), each [B, C, h, w] (no GCR, as the reference's cam_only path).</summary>
    public (Tensor Cam, Tensor AuxCam) CamOnly(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var (_, fmap, auxMap) = Features(images);
        var cam = functional.conv2d(fmap, classifier.weight!).detach();
        var auxCam = functional.conv2d(auxMap, aux_classifier.weight!).detach();
        return (cam.MoveToOuterDisposeScope(), auxCam.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The reference's pretrained initialisation of the prefix tokens (mat_vit.py reload) from a one-class-token checkpoint:
    /// every one of the R + C tokens starts as the checkpoint's class token, every prefix position embedding as its class
    /// position embedding except the R register rows, which are redrawn from a truncated normal with std 1 (timm default);
    /// the patch rows are the checkpoint's, resized to the model grid. clsToken [1, 1, D], posEmbed [1, 1 + N', D].
    /// </summary>
    public void InitializePrefixTokens(Tensor clsToken, Tensor posEmbed)
    {
        int d = Config.Backbone.EmbedDim, t = encoder.NumClassTokens, r = Config.RegisterTokens;
        if (clsToken.dim() != 3 || clsToken.shape[0] != 1 || clsToken.shape[1] != 1 || clsToken.shape[2] != d)
            throw new WeakSegException($"checkpoint cls_token must be [1, 1, {d}]; got [{string.Join(", ", clsToken.shape)}]");
        if (posEmbed.dim() != 3 || posEmbed.shape[0] != 1 || posEmbed.shape[2] != d)
            throw new WeakSegException($"checkpoint pos_embed must be [1, 1 + N, {d}]; got [{string.Join(", ", posEmbed.shape)}]");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        int grid = Config.BackboneConfig.GridSize;
        var patchRows = PositionEmbedding.Resize(posEmbed.to_type(ScalarType.Float32), 1, grid, grid, Config.Backbone.PositionEmbeddingResize)
            .narrow(1, 1, (long)grid * grid);
        var prefix = posEmbed.narrow(1, 0, 1).to_type(ScalarType.Float32).expand(1, t, d).clone();
        var registers = torch.empty(1, r, d);
        WeakSeg.Models.WeightInit.TruncNormal_(registers, std: 1.0);
        prefix.narrow(1, 0, r).copy_(registers);
        encoder.ClassTokenParameter.copy_(clsToken.to_type(ScalarType.Float32).expand(1, t, d));
        encoder.PositionEmbeddingParameter.copy_(torch.cat(new[] { prefix, patchRows }, 1));
    }
}
