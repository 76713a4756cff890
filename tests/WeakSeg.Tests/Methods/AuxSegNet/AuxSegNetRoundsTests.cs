using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.AuxSegNet;
using WeakSeg.Methods.CamResNet;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.AuxSegNet;

/// <summary>AuxSegNet's round capability: labels and saliency carried by the batch, the label update of one image with the saliency CRF,
/// the ablation switches, and the registration's capability data.</summary>
[Collection("Torch")]
public class AuxSegNetRoundsTests
{
    static AuxSegNetConfig Small => AuxSegNetConfig.Cpu with { NumClasses = 3, BranchWidth = 8, CropSize = 32, PretrainedTrunk = false, LabelStartStep = 5 };

    static AuxSegNetMethod Create(AuxSegNetConfig config)
    {
        torch.manual_seed(11);
        return (AuxSegNetMethod)MethodRegistry.Get(AuxSegNetMethod.MethodName).Create(config);
    }

    [Fact]
    public void A_batch_with_round_labels_and_saliency_trains_on_them_from_the_first_step()
    {
        using var scope = torch.NewDisposeScope();
        using var method = Create(Small);
        method.Model.eval();                                               // no dropout: two forwards give the same outputs
        torch.manual_seed(4);
        var images = torch.randn(2, 3, 32, 32);
        var imageLabels = torch.tensor(new float[] { 1, 0, 0, 0, 1, 1 }).reshape(2, 3);
        var labels = torch.randint(0, 4, [2, 32, 32], dtype: ScalarType.Int64);
        labels[0, 0, TensorIndex.Slice(0, 10)] = torch.tensor(255L);
        var saliency = torch.rand(2, 32, 32);
        // step 0 < LabelStartStep: online labels would train the classifier only; given labels train all five losses at once
        var terms = method.ComputeLoss(new TrainBatch(images, imageLabels, labels, saliency), new TrainStepContext(0, 10, 1e-3, new Random(0)));
        Assert.Equal(["cls", "seg_init", "seg_refined", "sal_init", "sal_refined"], terms.Parts.Select(p => p.Name));
        using var output = method.Network.Forward(images);
        var expected = AuxSegNetLoss.Compute(output, imageLabels, labels, saliency, Small, withLabels: true);
        foreach (var ((name, value), (_, want)) in terms.Parts.Zip(expected.Parts))
            Assert.Equal(want.item<float>(), value.item<float>(), 5);
        // other labels give another segmentation loss: the batch's labels are the ones used
        var other = method.ComputeLoss(new TrainBatch(images, imageLabels, labels.fill_(0), saliency), new TrainStepContext(0, 10, 1e-3, new Random(0)));
        Assert.NotEqual(terms.Parts[1].Value.item<float>(), other.Parts[1].Value.item<float>());
        // given saliency without labels: online labels fused with that saliency (all-zero saliency → no object pixel)
        var online = AuxSegNetMethod.OnlineLabels(output.Cam, images, imageLabels, Small, torch.zeros(2, 32, 32));
        Assert.Equal(0, online.Labels.ne(0).logical_and(online.Labels.ne(255)).sum().item<long>());
    }

    [Fact]
    public void Next_round_labels_are_the_update_with_the_saliency_crf_of_crf_for_sal()
    {
        using var scope = torch.NewDisposeScope();
        using var method = Create(Small);
        method.Model.eval();
        torch.manual_seed(5);
        var image = torch.randn(1, 3, 24, 40).clamp(-2, 2);
        var imageLabels = torch.tensor(new float[] { 0, 1, 1 }).reshape(1, 3);
        var saliency = torch.rand(1, 24, 40);
        var (labels, updated) = method.NextRoundLabels(image, imageLabels, saliency);

        using var output = method.Network.Forward(image);
        var rgb = SaliencyMaps.RgbBytes(image);
        var (plainLabels, plainSaliency) = AuxSegNetLabels.Update(output, saliency, imageLabels);
        var smoothed = SaliencyCrf.Refine(rgb, 40, 24, plainSaliency.data<float>().ToArray());
        Assert.Equal(smoothed, updated);
        var expected = AuxSegNetLabels.Fuse(AuxSegNetLabels.RefineCam(output.Cam, output.CrossTaskAffinity!, 24, 40),
            torch.tensor(smoothed, [1, 24, 40]), imageLabels);
        Assert.Equal(expected.to_type(ScalarType.Byte).data<byte>().ToArray(), labels);
        Assert.Contains(labels, v => v == 255);                           // the ignore band is there
        Assert.DoesNotContain(labels, v => v == 1);                       // class 0 is not in the image labels
        // the CRF changes the saliency (and with it, here, the labels); the option without it is the plain update
        Assert.NotEqual(plainSaliency.data<float>().ToArray(), updated);
        using var noCrf = Create(Small with { SaliencyCrf = false });
        noCrf.Model.eval();
        noCrf.Model.load_state_dict(method.Model.state_dict());
        var (withoutLabels, withoutSaliency) = noCrf.NextRoundLabels(image, imageLabels, saliency);
        Assert.Equal(plainSaliency.data<float>().ToArray(), withoutSaliency);
        Assert.Equal(plainLabels.to_type(ScalarType.Byte).data<byte>().ToArray(), withoutLabels);
    }

    [Fact]
    public void Ablated_models_update_labels_from_the_plain_cam_and_the_given_saliency()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(6);
        var image = torch.randn(1, 3, 24, 40).clamp(-2, 2);
        var imageLabels = torch.tensor(new float[] { 1, 0, 1 }).reshape(1, 3);
        var saliency = torch.rand(1, 24, 40);
        // segmentation only: no cross-task affinity (its refined map is the normalised CAM) and no trained saliency branch
        using var segOnly = Create(Small with { SaliencyAuxiliary = false, CrossTaskAffinity = false, UnaryAffinity = false, SaliencyCrf = false });
        segOnly.Model.eval();
        var (labels, updated) = segOnly.NextRoundLabels(image, imageLabels, saliency);
        using var output = segOnly.Network.Forward(image);
        Assert.Null(output.CrossTaskAffinity);
        Assert.Equal(saliency.data<float>().ToArray(), updated);                              // the given map, not averaged with the branch
        var cam = torch.nn.functional.interpolate(AuxSegNetLabels.NormalizeCam(output.Cam), [24, 40], mode: InterpolationMode.Bilinear, align_corners: false);
        var expected = AuxSegNetLabels.Fuse(cam, saliency, imageLabels);
        Assert.Equal(expected.to_type(ScalarType.Byte).data<byte>().ToArray(), labels);
        // with the saliency task but no cross-task affinity: the saliency is the average with the branch's prediction again
        using var plusSal = Create(Small with { CrossTaskAffinity = false, UnaryAffinity = false, SaliencyCrf = false });
        plusSal.Model.eval();
        var (_, averaged) = plusSal.NextRoundLabels(image, imageLabels, saliency);
        using var salOutput = plusSal.Network.Forward(image);
        var want = torch.nn.functional.interpolate(salOutput.RefinedSaliency, [24, 40], mode: InterpolationMode.Bilinear, align_corners: false)
            .sigmoid().squeeze(1).add(saliency).mul(0.5);
        Assert.Equal(want.data<float>().ToArray(), averaged);
    }

    [Fact]
    public void Saliency_crf_unary_is_the_dss_energy_and_one_iteration_smooths_towards_the_neighbours()
    {
        var unary = SaliencyCrf.Unary([0.3f, 1f]);
        static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
        Assert.Equal(-Math.Log(0.7 + 1e-8) / (1.05 * Sigmoid(0.7)), unary[0], 5);
        Assert.Equal(-Math.Log(0.3 + 1e-8) / (1.05 * Sigmoid(0.3)), unary[2], 5);
        Assert.Equal(-Math.Log(1e-8) / (1.05 * Sigmoid(0.0)), unary[1], 3);
        Assert.Equal(0.0, unary[3], 6);
        Assert.Equal((1, 3f, 3f, 60f, 5f, 5f), (SaliencyCrf.Config.Iterations, SaliencyCrf.Config.GaussianSxy, SaliencyCrf.Config.GaussianWeight,
            SaliencyCrf.Config.BilateralSxy, SaliencyCrf.Config.BilateralSrgb, SaliencyCrf.Config.BilateralWeight));
        // a flat grey image: a lone unsalient pixel among salient ones moves up, a lone salient one among unsalient ones moves down
        var rgb = Enumerable.Repeat((byte)128, 9 * 9 * 3).ToArray();
        var high = Enumerable.Repeat(0.9f, 81).ToArray();
        high[40] = 0.2f;
        Assert.True(SaliencyCrf.Refine(rgb, 9, 9, high)[40] > 0.2f);
        var low = Enumerable.Repeat(0.1f, 81).ToArray();
        low[40] = 0.8f;
        Assert.True(SaliencyCrf.Refine(rgb, 9, 9, low)[40] < 0.8f);
        Assert.Throws<WeakSegException>(() => SaliencyCrf.Refine(rgb, 9, 9, new float[80]));
    }

    [Fact]
    public void Ablation_switches_change_the_forward_and_the_loss_as_stated()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(6);
        var images = torch.randn(1, 3, 32, 32);
        var imageLabels = torch.tensor(new float[] { 1, 0, 1 }).reshape(1, 3);
        var labels = torch.randint(0, 4, [1, 32, 32], dtype: ScalarType.Int64);
        var saliency = torch.rand(1, 32, 32);
        var context = new TrainStepContext(0, 10, 1e-3, new Random(0));
        using var full = Create(Small);
        full.Model.eval();
        using var fullOut = full.Network.Forward(images);
        Assert.NotNull(fullOut.SegmentationUnary);

        // − unary affinity: no unary branch; the same weights otherwise give another refined prediction
        using var noUnary = Create(Small with { UnaryAffinity = false });
        noUnary.Model.eval();
        noUnary.Model.load_state_dict(full.Model.state_dict(), strict: false);
        using var noUnaryOut = noUnary.Network.Forward(images);
        Assert.Null(noUnaryOut.SegmentationUnary);
        Assert.Null(noUnary.Network.heads.seg_unary);
        // the unary context enhances the features (so the initial prediction) and the refined prediction
        Assert.True(fullOut.InitialSegmentation.sub(noUnaryOut.InitialSegmentation).abs().max().item<float>() > 1e-4);
        Assert.True(fullOut.RefinedSegmentation.sub(noUnaryOut.RefinedSegmentation).abs().max().item<float>() > 1e-4);
        TensorAssert.Close(fullOut.SegmentationAffinity, noUnaryOut.SegmentationAffinity, 1e-5, "pairwise affinity (before the unary branch)");

        // − cross-task affinity: refined = initial, no cross-task weights, no refined losses
        using var noCross = Create(Small with { CrossTaskAffinity = false, UnaryAffinity = false });
        noCross.Model.eval();
        using var noCrossOut = noCross.Network.Forward(images);
        Assert.Null(noCrossOut.CrossTaskAffinity);
        TensorAssert.Close(noCrossOut.InitialSegmentation, noCrossOut.RefinedSegmentation, 0, "refined = initial");
        Assert.Equal(["cls", "seg_init", "sal_init"],
            noCross.ComputeLoss(new TrainBatch(images, imageLabels, labels, saliency), context).Parts.Select(p => p.Name));

        // − saliency auxiliary: no saliency losses (the branch still feeds the cross-task affinity)
        using var noSal = Create(Small with { SaliencyAuxiliary = false });
        Assert.Equal(["cls", "seg_init", "seg_refined"], noSal.ComputeLoss(new TrainBatch(images, imageLabels, labels, saliency), context).Parts.Select(p => p.Name));

        // seg only: neither
        using var segOnly = Create(Small with { SaliencyAuxiliary = false, CrossTaskAffinity = false, UnaryAffinity = false });
        Assert.Equal(["cls", "seg_init"], segOnly.ComputeLoss(new TrainBatch(images, imageLabels, labels, saliency), context).Parts.Select(p => p.Name));
    }

    [Fact]
    public void Registration_declares_rounds_and_saliency_and_a_method_without_the_interface_is_refused()
    {
        var aux = MethodRegistry.Get(AuxSegNetMethod.MethodName);
        Assert.True(aux.HasLabelRounds);
        Assert.True(aux.UsesSaliency);
        foreach (var name in MethodRegistry.Names.Where(n => n != AuxSegNetMethod.MethodName))
            Assert.False(MethodRegistry.Get(name).HasLabelRounds || MethodRegistry.Get(name).UsesSaliency, name);
        var fake = new MethodRegistration<CamResNetConfig>("fake-rounds", "CAM that claims rounds", new([LocalizationMapKind.Fused], LocalizationMapKind.Fused, LocalizationMapKind.Fused),
            c => new CamResNetMethod(c), labelRounds: true);
        var e = Assert.Throws<InvalidOperationException>(() => fake.Create(CamResNetConfig.Cpu.WithNumClasses(3)));
        Assert.Contains("does not implement ILabelRoundsMethod", e.Message);
    }
}
