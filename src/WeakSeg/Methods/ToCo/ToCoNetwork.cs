using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.ToCo;

/// <summary>
/// DeepLab "LargeFOV" segmentation head (ToCo model/decoder/conv_head.py): conv6 3×3 (D → width, dilation d, padding d),
/// ReLU, conv7 3×3 (width → width, dilation d, padding d), ReLU, conv8 1×1 (width → classes + 1). No biases; PyTorch's
/// default initialisation (the reference never calls its _init_weights). Keys conv6/conv7/conv8.weight.
/// </summary>
public sealed class LargeFovHead : Module<Tensor, Tensor>
{
    readonly Conv2d conv6;
    readonly Conv2d conv7;
    readonly Conv2d conv8;

    public LargeFovHead(int inChannels, int outChannels, int width = 512, int dilation = 5) : base(nameof(LargeFovHead))
    {
        conv6 = Conv2d(inChannels, width, kernel_size: 3, padding: dilation, dilation: dilation, bias: false);
        conv7 = Conv2d(width, width, kernel_size: 3, padding: dilation, dilation: dilation, bias: false);
        conv8 = Conv2d(width, outChannels, kernel_size: 1, bias: false);
        RegisterComponents();
    }

    /// <summary>features [B, D, h, w] → logits [B, classes + 1, h, w].</summary>
    public override Tensor forward(Tensor features)
    {
        using var x6 = conv6.call(features);
        using var r6 = functional.relu(x6);
        using var x7 = conv7.call(r6);
        using var r7 = functional.relu(x7);
        return conv8.call(r7);
    }
}

/// <summary>What <see cref="ToCoNetwork.forward"/> returns. Owns its tensors.</summary>
/// <param name="ClassLogits">[B, C] classifier on the global max pool of the final patch tokens</param>
/// <param name="AuxLogits">[B, C] aux_classifier on the global max pool of the aux-layer tokens</param>
/// <param name="Segmentation">[B, C+1, h, w] LargeFOV logits on the final patch tokens (patch stride)</param>
/// <param name="FeatureMap">[B, D, h, w] final patch tokens (after the final norm)</param>
/// <param name="AuxFeatureMap">[B, D, h, w] patch tokens leaving the aux block (no norm)</param>
/// <param name="ClassToken">[B, D] class token after the final norm</param>
public sealed record ToCoOutput(Tensor ClassLogits, Tensor AuxLogits, Tensor Segmentation, Tensor FeatureMap, Tensor AuxFeatureMap,
    Tensor ClassToken) : IDisposable
{
    IEnumerable<Tensor> All => [ClassLogits, AuxLogits, Segmentation, FeatureMap, AuxFeatureMap, ClassToken];

    public ToCoOutput MoveToOuterDisposeScope()
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
/// The ToCo network (model/model_seg_neg.py) on the shared ViT: <c>encoder</c> (one class token; position embedding resized
/// bicubically to every input grid), <c>classifier</c> and <c>aux_classifier</c> = Conv2d(D, C, 1, no bias) applied after
/// global max pooling of the final tokens and of the tokens leaving block <see cref="ToCoConfig.AuxLayer"/>, and the LargeFOV
/// <c>decoder</c> on the final tokens. Keys follow the reference state_dict (encoder.*, classifier.weight, aux_classifier.weight,
/// decoder.conv6/7/8.weight). C = foreground classes; the decoder predicts C + 1 (background first).
/// With <see cref="ToCoConfig.UseCtc"/> it also holds the class-token contrast heads: <c>proj_head</c> (trained) and its EMA copy
/// <c>proj_head_t</c> (no gradient, starts as a copy), both <see cref="DinoProjector"/>s, so checkpoints keep the teacher head.
/// </summary>
public sealed class ToCoNetwork : Module<Tensor, ToCoOutput>
{
    readonly VisionTransformer encoder;
    readonly Conv2d classifier;
    readonly Conv2d aux_classifier;
    readonly LargeFovHead decoder;
    readonly DinoProjector? proj_head;
    readonly DinoProjector? proj_head_t;

    public ToCoNetwork(ToCoConfig config) : base("ToCo")
    {
        config.EnsureValid();
        Config = config;
        encoder = new VisionTransformer(config.BackboneConfig);
        int d = config.Backbone.EmbedDim;
        classifier = Conv2d(d, config.NumClasses, kernel_size: 1, bias: false);
        aux_classifier = Conv2d(d, config.NumClasses, kernel_size: 1, bias: false);
        decoder = new LargeFovHead(d, config.NumClasses + 1, config.DecoderWidth, config.DecoderDilation);
        if (config.UseCtc)
        {
            proj_head = new DinoProjector(d, config.ProjectorOutDim, config.ProjectorHiddenDim, config.ProjectorBottleneckDim);
            proj_head_t = new DinoProjector(d, config.ProjectorOutDim, config.ProjectorHiddenDim, config.ProjectorBottleneckDim);
        }
        RegisterComponents();
        if (proj_head_t is not null)
        {
            foreach (var p in proj_head_t.parameters()) p.requires_grad = false;
            CopyProjectorToTeacher();
        }
    }

    public ToCoConfig Config { get; }

    /// <summary>The shared ViT backbone (load timm weights into it with <c>TimmWeightImport.Load(network.Encoder, ...)</c>).</summary>
    public VisionTransformer Encoder => encoder;

    /// <summary>Parameters of the heads trained at 10× the backbone rate (classifiers and decoder), by their full names.</summary>
    public bool IsHeadParameter(string name) => !name.StartsWith("encoder.", StringComparison.Ordinal);

    (VitOutput Output, Tensor FeatureMap, Tensor AuxFeatureMap) Features(Tensor images)
    {
        var (output, block) = encoder.ForwardFeaturesWithBlock(images, Config.AuxLayer);
        long b = images.shape[0];
        int h = output.GridHeight, w = output.GridWidth;
        var fmap = output.PatchGrid();                                                               // [B, D, h, w]
        var auxTokens = block.narrow(1, encoder.NumClassTokens, (long)h * w);
        var auxMap = auxTokens.transpose(1, 2).reshape(b, auxTokens.shape[2], h, w);               // [B, D, h, w]
        return (output, fmap, auxMap);
    }

    /// <summary>Full forward: logits of both classifiers, segmentation logits and the feature maps.</summary>
    public override ToCoOutput forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var (output, fmap, auxMap) = Features(images);
        var classLogits = classifier.call(functional.adaptive_max_pool2d(fmap, [1L, 1L])).flatten(1);     // [B, C]
        var auxLogits = aux_classifier.call(functional.adaptive_max_pool2d(auxMap, [1L, 1L])).flatten(1); // [B, C]
        var segmentation = decoder.call(fmap);                                                     // [B, C+1, h, w]
        var classToken = output.ClassTokens.select(1, 0);                                          // [B, D]
        return new ToCoOutput(classLogits, auxLogits, segmentation, fmap, auxMap, classToken).MoveToOuterDisposeScope();
    }

    /// <summary>CAMs at the patch grid, detached: (cam = conv(fmap, classifier), aux cam = conv(aux map, aux_classifier)), each [B, C, h, w].</summary>
    public (Tensor Cam, Tensor AuxCam) CamOnly(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var (_, fmap, auxMap) = Features(images);
        var cam = functional.conv2d(fmap, classifier.weight!).detach();
        var auxCam = functional.conv2d(auxMap, aux_classifier.weight!).detach();
        return (cam.MoveToOuterDisposeScope(), auxCam.MoveToOuterDisposeScope());
    }

    /// <summary>The class-token contrast's projection head (student), or null without <see cref="ToCoConfig.UseCtc"/>.</summary>
    public DinoProjector? Projector => proj_head;

    /// <summary>The EMA teacher of <see cref="Projector"/>, or null without <see cref="ToCoConfig.UseCtc"/>.</summary>
    public DinoProjector? TeacherProjector => proj_head_t;

    /// <summary>Sets every teacher-head parameter to the student head's (construction).</summary>
    void CopyProjectorToTeacher()
    {
        using var noGrad = torch.no_grad();
        foreach (var (s, t) in proj_head!.parameters().Zip(proj_head_t!.parameters())) t.copy_(s);
    }

    /// <summary>
    /// One EMA step of the teacher head (_EMA_update_encoder_teacher, constant momentum): θ_t ← m·θ_t + (1 − m)·θ_s over every
    /// projection-head parameter, m = <see cref="ToCoConfig.ProjectorTeacherMomentum"/>. Only the head is EMA'd; the encoder is shared.
    /// </summary>
    public void UpdateTeacherProjector()
    {
        if (proj_head is null || proj_head_t is null) throw new WeakSegException("this ToCo network was built without class-token contrast (model.use_ctc=false)");
        using var noGrad = torch.no_grad();
        double m = Config.ProjectorTeacherMomentum;
        using var keep = m.ToScalar();
        using var take = (1.0 - m).ToScalar();
        foreach (var (s, t) in proj_head.parameters().Zip(proj_head_t.parameters())) t.mul_(keep).add_(s.detach(), take);
    }

    /// <summary>The class token after the final norm, [B, D], of images [B, 3, H, W] (any size the patch grid allows).</summary>
    public Tensor ClassToken(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        return encoder.ForwardFeatures(images).ClassTokens.select(1, 0).MoveToOuterDisposeScope();
    }

    /// <summary>The segmentation head alone: features [B, D, h, w] → logits [B, C+1, h, w].</summary>
    public Tensor Decode(Tensor featureMap) => decoder.call(featureMap);
}
