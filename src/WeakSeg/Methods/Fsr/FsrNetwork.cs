using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.Fsr;

/// <summary>What <see cref="FsrNetwork.Forward"/> returns. Classifier, decoder and feature maps are of the first view only.</summary>
/// <param name="ClassLogits">[B, C] top classifier on the global max pool of the final patch tokens</param>
/// <param name="AuxLogits">[B, C] aux classifier on the global max pool of the aux tokens</param>
/// <param name="Segmentation">[B, C+1, h, w] LargeFOV logits</param>
/// <param name="FeatureMap">[B, D, h, w] final patch tokens</param>
/// <param name="AuxFeatureMap">[B, D, h, w] aux tokens</param>
/// <param name="Projection">[V·B, 1 + N, K] projector output of every token of every view (token 0 = the aggregated token); empty
/// [0] when the forward was told not to project</param>
public sealed record FsrOutput(Tensor ClassLogits, Tensor AuxLogits, Tensor Segmentation, Tensor FeatureMap, Tensor AuxFeatureMap, Tensor Projection)
    : IDisposable
{
    IEnumerable<Tensor> All => [ClassLogits, AuxLogits, Segmentation, FeatureMap, AuxFeatureMap, Projection];

    public FsrOutput MoveToOuterDisposeScope()
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
/// One FSR network (models/network.py WSSSNetwork): <c>encoder</c> (<see cref="FsrEncoder"/>), <c>decoder</c> (ToCo's
/// <see cref="LargeFovHead"/>), <c>projector</c> (<see cref="DinoProjector"/>), <c>top_classifier</c> and <c>aux_classifier</c>
/// (Conv2d(D, C, 1, no bias) after global max pooling). The student and the EMA teacher are two of these.
/// </summary>
public sealed class FsrNetwork : Module<Tensor, FsrOutput>
{
    readonly FsrEncoder encoder;
    readonly LargeFovHead decoder;
    readonly DinoProjector projector;
    readonly Conv2d top_classifier;
    readonly Conv2d aux_classifier;

    public FsrNetwork(FsrConfig config) : base("Fsr")
    {
        config.EnsureValid();
        Config = config;
        encoder = new FsrEncoder(config.BackboneConfig, config.AuxLayer, config.AggregatorDepth, config.AggregatorAttentionMask, config.AggregatorLayerScale,
            config.CertainTokenPooling);
        int d = config.Backbone.EmbedDim;
        decoder = new LargeFovHead(d, config.NumClasses + 1, config.DecoderWidth, config.DecoderDilation);
        projector = new DinoProjector(d, config.ProjectorOutDim, config.ProjectorHiddenDim, config.ProjectorBottleneckDim);
        top_classifier = Conv2d(d, config.NumClasses, kernel_size: 1, bias: false);
        aux_classifier = Conv2d(d, config.NumClasses, kernel_size: 1, bias: false);
        RegisterComponents();
    }

    public FsrConfig Config { get; }

    public FsrEncoder Encoder => encoder;

    public DinoProjector Projector => projector;

    /// <summary>Parameters trained at the head rate: everything outside the encoder (decoder, projector, classifiers).</summary>
    public static bool IsHeadParameter(string name) => !name.StartsWith("encoder.", StringComparison.Ordinal);

    /// <summary>
    /// images [V·B, 3, H, W] (the views stacked view-major), mask [V·B, h, w] or null. The projector sees every token of every view;
    /// the classifiers, decoder and feature maps only the first view (the first B rows). <paramref name="project"/> false skips the
    /// projector (<see cref="FsrOutput.Projection"/> is then empty).
    /// </summary>
    public FsrOutput Forward(Tensor images, Tensor? mask = null, int views = 1, bool project = true)
    {
        if (views < 1 || images.shape[0] % views != 0)
            throw new WeakSegException($"FSR forward: {images.shape[0]} images cannot hold {views} views of the same batch");
        using var scope = torch.NewDisposeScope();
        var encoded = encoder.Forward(images, mask);
        var projection = project ? projector.call(encoded.Tokens) : torch.empty(0);
        long b = images.shape[0] / views;
        var fmap = encoded.PatchGrid().narrow(0, 0, b);
        var auxMap = encoded.AuxGrid().narrow(0, 0, b);
        var classLogits = top_classifier.call(functional.adaptive_max_pool2d(fmap, [1L, 1L])).flatten(1);
        var auxLogits = aux_classifier.call(functional.adaptive_max_pool2d(auxMap, [1L, 1L])).flatten(1);
        var segmentation = decoder.call(fmap);
        return new FsrOutput(classLogits, auxLogits, segmentation, fmap, auxMap, projection).MoveToOuterDisposeScope();
    }

    public override FsrOutput forward(Tensor images) => Forward(images);

    /// <summary>The projector output alone (the teacher's part of a step): [V·B, 1 + N, K].</summary>
    public Tensor Project(Tensor images, Tensor? mask = null)
    {
        using var scope = torch.NewDisposeScope();
        return projector.call(encoder.Forward(images, mask).Tokens).MoveToOuterDisposeScope();
    }

    /// <summary>CAMs at the patch grid, detached and unmasked: (cam = conv(fmap, top_classifier), aux cam = conv(aux map, aux_classifier)).</summary>
    public (Tensor Cam, Tensor AuxCam) CamOnly(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var encoded = encoder.Forward(images);
        var cam = functional.conv2d(encoded.PatchGrid(), top_classifier.weight!).detach();
        var auxCam = functional.conv2d(encoded.AuxGrid(), aux_classifier.weight!).detach();
        return (cam.MoveToOuterDisposeScope(), auxCam.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The trained FSR model: the <c>student</c>, its EMA <c>teacher</c> (same architecture, no gradient, initialised as a copy of
/// the student) and the two teacher centres (<c>class_center</c> [1, K], <c>patch_center</c> [1, 1, K]; zeros at the start) —
/// all in one state dict, so checkpoints hold the teacher and the centres and a resumed run continues exactly.
/// </summary>
public sealed class FsrModel : Module<Tensor, FsrOutput>
{
    readonly FsrNetwork student;
    readonly FsrNetwork teacher;
    readonly Tensor class_center;
    readonly Tensor patch_center;

    public FsrModel(FsrConfig config) : base("FsrModel")
    {
        Config = config;
        student = new FsrNetwork(config);
        teacher = new FsrNetwork(config);
        RegisterComponents();
        class_center = torch.zeros(1, config.ProjectorOutDim);
        patch_center = torch.zeros(1, 1, config.ProjectorOutDim);
        register_buffer(nameof(class_center), class_center);
        register_buffer(nameof(patch_center), patch_center);
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        CopyStudentToTeacher();
    }

    /// <summary>Sets every teacher parameter to the student's (the start of training, and after importing pretrained weights).</summary>
    public void CopyStudentToTeacher()
    {
        using var noGrad = torch.no_grad();
        foreach (var (s, t) in student.parameters().Zip(teacher.parameters())) t.copy_(s);
    }

    public FsrConfig Config { get; }

    public FsrNetwork Student => student;

    public FsrNetwork Teacher => teacher;

    /// <summary>The class centre [1, K] (updated in place by <see cref="FsrTraining"/>).</summary>
    public Tensor ClassCenter => class_center;

    /// <summary>The patch centre [1, 1, K].</summary>
    public Tensor PatchCenter => patch_center;

    /// <summary>The student's forward.</summary>
    public override FsrOutput forward(Tensor images) => student.Forward(images);

    /// <summary>
    /// One EMA step of the teacher over every parameter (encoder, aggregator, projector, decoder, classifiers):
    /// θ_t ← m·θ_t + (1 − m)·θ_s, with m = <paramref name="momentum"/>, or <paramref name="projectorMomentum"/> for the projector.
    /// </summary>
    public void UpdateTeacher(double momentum, double? projectorMomentum = null)
    {
        using var noGrad = torch.no_grad();
        var studentParameters = student.named_parameters().ToList();
        var teacherParameters = teacher.parameters().ToList();
        for (int i = 0; i < studentParameters.Count; i++)
        {
            double m = projectorMomentum is { } pm && studentParameters[i].name.StartsWith("projector.", StringComparison.Ordinal) ? pm : momentum;
            using var keep = m.ToScalar();
            using var take = (1.0 - m).ToScalar();
            teacherParameters[i].mul_(keep).add_(studentParameters[i].parameter.detach(), take);
        }
    }
}
