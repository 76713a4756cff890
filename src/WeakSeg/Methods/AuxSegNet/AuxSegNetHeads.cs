using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>Everything the heads compute for a batch (N = h·w). Unary tensors are null without <see cref="AuxSegNetConfig.UnaryAffinity"/>.</summary>
public sealed record AuxSegNetOutput(
    Tensor Logits, Tensor Cam, Tensor SegmentationFeatures, Tensor SaliencyFeatures, Tensor SegmentationAffinity, Tensor SaliencyAffinity,
    Tensor? SegmentationUnary, Tensor? SaliencyUnary, Tensor SegmentationEnhanced, Tensor SaliencyEnhanced, Tensor InitialSegmentation,
    Tensor InitialSaliency, Tensor? CrossTaskWeights, Tensor? CrossTaskAffinity, Tensor? CrossTaskUnaryWeights, Tensor? CrossTaskUnary,
    Tensor RefinedSegmentation, Tensor RefinedSaliency) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in new[] { Logits, Cam, SegmentationFeatures, SaliencyFeatures, SegmentationAffinity, SaliencyAffinity, SegmentationUnary,
                     SaliencyUnary, SegmentationEnhanced, SaliencyEnhanced, InitialSegmentation, InitialSaliency, CrossTaskWeights, CrossTaskAffinity,
                     CrossTaskUnaryWeights, CrossTaskUnary, RefinedSegmentation, RefinedSaliency })
            t?.Dispose();
    }
}

/// <summary>
/// The unary affinity of one task: <c>mask</c> (1×1 conv C → 1, softmax over pixels) and <c>transform</c> (1×1 conv C → C with bias)
/// that adds the global context Σ_i u_i F_i to every pixel (GCNet-style; the AuxSegNet+ form is not published in detail).
/// </summary>
public sealed class UnaryAffinityBlock : Module
{
    public readonly Conv2d mask;
    public readonly Conv2d transform;

    public UnaryAffinityBlock(int width) : base(nameof(UnaryAffinityBlock))
    {
        mask = Conv2d(width, 1, 1);
        transform = Conv2d(width, width, 1);
        RegisterComponents();
    }
}

/// <summary>The official NLBlock's two used projections θ and φ (1×1 convs with bias); its unused g and W_z are not built.</summary>
public sealed class PairwiseAffinityBlock : Module
{
    public readonly Conv2d theta;
    public readonly Conv2d phi;

    public PairwiseAffinityBlock(int width) : base(nameof(PairwiseAffinityBlock))
    {
        theta = Conv2d(width, width, 1);
        phi = Conv2d(width, width, 1);
        RegisterComponents();
    }
}

/// <summary>
/// AuxSegNet's heads on the trunk's stride-8 features (official key names: <c>fc8</c>, <c>seg_conv1..4</c>, <c>sal_conv1..4</c>,
/// <c>seg_att</c>/<c>sal_att</c> (θ, φ), <c>seg_g</c>/<c>seg_W</c>, <c>sal_g</c>/<c>sal_W</c>, <c>cross_att</c>; AuxSegNet+ adds
/// <c>seg_unary</c>/<c>sal_unary</c> and <c>cross_unary</c>). Per task t: F_t = ReLU(conv d12(ReLU(conv d6(x)))); A_t pairwise;
/// enhanced F_t + W_t(A_t·g_t(F_t)) [+ unary context transform_t(Σ u_t F_t)]; init_t = conv1×1(ReLU(conv d18(enhanced))).
/// Cross-task: A_ct = ω₀A_seg + ω₁A_sal; refined_t = A_ct·init_t, with the unary affinity ½(A_ct·init_t + Σ_i u_ct,i init_t,i).
/// </summary>
public sealed class AuxSegNetHeads : Module
{
    readonly AuxSegNetConfig config;
    readonly Dropout2d dropout = Dropout2d(0.5);
    public readonly Conv2d fc8;
    public readonly Conv2d seg_conv1, seg_conv2, seg_conv3, seg_conv4, sal_conv1, sal_conv2, sal_conv3, sal_conv4;
    public readonly PairwiseAffinityBlock seg_att, sal_att;
    public readonly Conv2d seg_g, seg_W, sal_g, sal_W;
    public readonly Sequential cross_att;
    public readonly UnaryAffinityBlock? seg_unary, sal_unary;
    public readonly Sequential? cross_unary;

    public AuxSegNetHeads(AuxSegNetConfig config, int inChannels) : base(nameof(AuxSegNetHeads))
    {
        this.config = config;
        int w = config.BranchWidth;
        fc8 = Conv2d(inChannels, config.NumClasses, 1, bias: false);
        (seg_conv1, seg_conv2, seg_conv3, seg_conv4) = Branch(inChannels, w, config.NumClasses + 1);
        (sal_conv1, sal_conv2, sal_conv3, sal_conv4) = Branch(inChannels, w, 1);
        seg_att = new PairwiseAffinityBlock(w);
        sal_att = new PairwiseAffinityBlock(w);
        seg_g = Conv2d(w, w, 1);
        seg_W = Conv2d(w, w, 1);
        sal_g = Conv2d(w, w, 1);
        sal_W = Conv2d(w, w, 1);
        int k = config.CrossTaskKernel;
        cross_att = Sequential(("0", Conv2d(2, 2, k, padding: k / 2, bias: false)), ("1", ReLU()), ("2", Conv2d(2, 2, 1)));
        if (config.UnaryAffinity)
        {
            seg_unary = new UnaryAffinityBlock(w);
            sal_unary = new UnaryAffinityBlock(w);
            cross_unary = Sequential(("0", Conv2d(2, 2, 1, bias: false)), ("1", ReLU()), ("2", Conv2d(2, 2, 1)));
        }
        RegisterComponents();
        using var _ = torch.no_grad();
        init.xavier_uniform_(fc8.weight);                                                // official: Xavier, no bias
    }

    static (Conv2d, Conv2d, Conv2d, Conv2d) Branch(int inChannels, int width, int outputs) => (
        Conv2d(inChannels, width, 3, padding: 6, dilation: 6),
        Conv2d(width, width, 3, padding: 12, dilation: 12),
        Conv2d(width, width, 3, padding: 18, dilation: 18),
        Conv2d(width, outputs, 1, bias: false));

    /// <summary>conv6 features [B, C_in, h, w] → every head output (the caller disposes it).</summary>
    public AuxSegNetOutput Forward(Tensor features)
    {
        using var scope = torch.NewDisposeScope();
        var logits = fc8.call(dropout.call(features).mean([2, 3], keepdim: true)).flatten(1);      // Dropout2d(0.5) → GAP → fc8
        var cam = functional.conv2d(features, fc8.weight);                                         // no dropout, no ReLU
        var segFeatures = functional.relu(seg_conv2.call(functional.relu(seg_conv1.call(features))));
        var salFeatures = functional.relu(sal_conv2.call(functional.relu(sal_conv1.call(features))));
        var segAffinity = AuxSegNetAffinity.Pairwise(segFeatures, seg_att.theta, seg_att.phi, config.ScaledAffinity);
        var salAffinity = AuxSegNetAffinity.Pairwise(salFeatures, sal_att.theta, sal_att.phi, config.ScaledAffinity);
        var segEnhanced = segFeatures.add(seg_W.call(AuxSegNetAffinity.Propagate(segAffinity, seg_g.call(segFeatures))));
        var salEnhanced = salFeatures.add(sal_W.call(AuxSegNetAffinity.Propagate(salAffinity, sal_g.call(salFeatures))));
        Tensor? segUnary = null, salUnary = null;
        if (seg_unary is not null && sal_unary is not null)
        {
            segUnary = AuxSegNetAffinity.Unary(segFeatures, seg_unary.mask);
            salUnary = AuxSegNetAffinity.Unary(salFeatures, sal_unary.mask);
            segEnhanced = segEnhanced.add(seg_unary.transform.call(AuxSegNetAffinity.Context(segUnary, segFeatures)));
            salEnhanced = salEnhanced.add(sal_unary.transform.call(AuxSegNetAffinity.Context(salUnary, salFeatures)));
        }
        var initSeg = seg_conv4.call(functional.relu(seg_conv3.call(segEnhanced)));
        var initSal = sal_conv4.call(functional.relu(sal_conv3.call(salEnhanced)));

        Tensor? crossWeights = null, crossAffinity = null, unaryWeights = null, crossUnary = null;
        Tensor refinedSeg = initSeg.alias(), refinedSal = initSal.alias();               // the ablation without cross-task affinity: refined = init
        if (config.CrossTaskAffinity)
        {
            crossWeights = AuxSegNetAffinity.CrossTaskWeights(segAffinity, salAffinity, cross_att);
            crossAffinity = AuxSegNetAffinity.Fuse(crossWeights, segAffinity, salAffinity);
            refinedSeg = AuxSegNetAffinity.Propagate(crossAffinity, initSeg);
            refinedSal = AuxSegNetAffinity.Propagate(crossAffinity, initSal);
            if (cross_unary is not null)
            {
                unaryWeights = AuxSegNetAffinity.CrossTaskWeights(segUnary!, salUnary!, cross_unary);
                crossUnary = AuxSegNetAffinity.Fuse(unaryWeights, segUnary!, salUnary!);
                refinedSeg = refinedSeg.add(AuxSegNetAffinity.Context(crossUnary, initSeg)).mul_(0.5);
                refinedSal = refinedSal.add(AuxSegNetAffinity.Context(crossUnary, initSal)).mul_(0.5);
            }
        }
        var output = new AuxSegNetOutput(logits, cam, segFeatures, salFeatures, segAffinity, salAffinity, segUnary, salUnary, segEnhanced,
            salEnhanced, initSeg, initSal, crossWeights, crossAffinity, unaryWeights, crossUnary, refinedSeg, refinedSal);
        foreach (var t in new[] { logits, cam, segFeatures, salFeatures, segAffinity, salAffinity, segUnary, salUnary, segEnhanced, salEnhanced,
                     initSeg, initSal, crossWeights, crossAffinity, unaryWeights, crossUnary, refinedSeg, refinedSal })
            t?.MoveToOuterDisposeScope();
        return output;
    }
}
