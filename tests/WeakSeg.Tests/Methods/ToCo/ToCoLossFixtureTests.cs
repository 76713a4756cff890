using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.ToCo;

/// <summary>ToCo/MoRe losses against the official code (tests/fixtures/single_stage/README.md).</summary>
[Collection("Torch")]
public class ToCoLossFixtureTests
{
    [Fact]
    public void Masked_patch_contrast_matches_the_reference()
    {
        var io = ToCoLabelFixtureTests.Case("toco_masked_ptc_loss");
        using var scope = torch.NewDisposeScope();
        var loss = ToCoLoss.MaskedPatchContrast(io.ToTorch("fmap"), io.ToTorch("aff_mask"));
        TensorAssert.Close(io.ToTorch("loss"), loss.reshape(1), 1e-4, "ptc");
    }

    [Fact]
    public void Segmentation_loss_reference_is_NaN_without_background_or_foreground()
    {
        var io = ToCoLabelFixtureTests.Case("toco_seg_loss");
        using var scope = torch.NewDisposeScope();
        var pred = io.ToTorch("pred");
        TensorAssert.Close(io.ToTorch("loss"), ToCoLoss.Segmentation(pred, io.ToTorch("label")).reshape(1), 1e-4, "seg");
        Assert.True(float.IsNaN(io.ToTorch("loss_no_bg").item<float>()));
        Assert.True(float.IsNaN(ToCoLoss.Segmentation(pred, io.ToTorch("label_no_bg")).item<float>()), "no background → NaN (reference)");
        Assert.True(float.IsNaN(ToCoLoss.Segmentation(pred, io.ToTorch("label_no_fg")).item<float>()), "no foreground → NaN (reference)");
    }

    [Fact]
    public void Segmentation_loss_count_epsilon_matches_MoRe_and_stays_finite()
    {
        var io = ToCoLabelFixtureTests.Case("more_seg_loss");
        using var scope = torch.NewDisposeScope();
        var pred = io.ToTorch("pred");
        TensorAssert.Close(io.ToTorch("loss"), ToCoLoss.Segmentation(pred, io.ToTorch("label"), SegmentationLossReduction.CountEpsilon).reshape(1), 1e-4, "seg");
        TensorAssert.Close(io.ToTorch("loss_no_bg"), ToCoLoss.Segmentation(pred, io.ToTorch("label_no_bg"), SegmentationLossReduction.CountEpsilon).reshape(1), 1e-4, "seg no bg");
        var toco = ToCoLabelFixtureTests.Case("toco_seg_loss");
        var noForeground = ToCoLoss.Segmentation(toco.ToTorch("pred"), toco.ToTorch("label_no_fg"), SegmentationLossReduction.CountEpsilon).item<float>();
        Assert.True(float.IsFinite(noForeground) && noForeground > 0, $"no foreground gives {noForeground}");
        Assert.Equal((0L, 2L * 8 * 10 - toco.ToTorch("label_no_bg").eq(255L).sum().item<long>()), ToCoLoss.CountBackgroundForeground(toco.ToTorch("label_no_bg")));
    }

    [Fact]
    public void Class_token_contrast_matches_the_reference_and_the_positives_only_variant_drops_the_extra_term()
    {
        var io = ToCoLabelFixtureTests.Case("toco_ctc_loss_neg");
        using var scope = torch.NewDisposeScope();
        var student = io.ToTorch("student_output");
        var teacher = io.ToTorch("teacher_output");
        var flags = io.ToTorch("flags");
        TensorAssert.Close(io.ToTorch("loss"), ToCoLoss.ClassTokenContrast(student, teacher, flags, 0.5).reshape(1), 1e-4, "ctc");

        // Brute force of the positives-only variant in double precision.
        long b = flags.shape[0], views = flags.shape[1];
        var s = student.to_type(ScalarType.Float64);
        var t = teacher.to_type(ScalarType.Float64);
        double total = 0;
        for (long i = 0; i < b; i++)
        {
            double sum = 0;
            int positives = 0;
            for (long v = 0; v < views; v++) if (flags[i, v].item<float>() != 0) positives++;
            for (long k = 0; k < 2; k++)
            {
                double negative = 0;
                var logits = new double[views];
                for (long v = 0; v < views; v++)
                {
                    logits[v] = Math.Exp(t[k * b + i].dot(s[v * b + i]).item<double>() / 0.5);
                    if (flags[i, v].item<float>() == 0) negative += logits[v];
                }
                for (long v = 0; v < views; v++)
                    if (flags[i, v].item<float>() != 0) sum += -Math.Log(logits[v] / (logits[v] + negative + 1e-4));
            }
            total += sum / 2 / (positives + 1e-4);
        }
        double expected = total / b;
        double actual = ToCoLoss.ClassTokenContrast(student, teacher, flags, 0.5, CtcLossVariant.PositivesOnly).item<float>();
        Assert.True(Math.Abs(expected - actual) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"positives only: {actual} vs {expected}");
        Assert.True(io.ToTorch("loss").item<float>() > actual + 1e-3, "the reference adds a positive extra term");
    }
}
