using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Methods.Fsr;
using WeakSeg.Methods.ToCo;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.Fsr;

/// <summary>FSR's ablation switches: unc.FSR / cer.FSR on and off, and what a zero weight does not skip.</summary>
[Collection("Torch")]
public class FsrAblationTests
{
    static (Tensor Images, Tensor Labels) Batch()
    {
        using var generator = new torch.Generator(17);
        return (torch.randn(new long[] { 2, 3, 32, 32 }, generator: generator), torch.tensor(new float[] { 1, 0, 1, 0, 1, 0 }).reshape(2, 3));
    }

    /// <summary>One loss step and the teacher update of a fresh tiny model; the sections timed, the parts and whether the teacher moved.</summary>
    static (IReadOnlyList<string> Parts, IReadOnlyCollection<string> Sections, bool TeacherMoved, bool CentresMoved) Step(FsrConfig config)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        using var model = new FsrModel(config);
        var par = new PixelAdaptiveRefinement(config.Par);
        var (images, labels) = Batch();
        model.train();
        var teacherBefore = model.Teacher.parameters().Select(p => p.clone()).ToList();
        using (torch.no_grad())
            foreach (var p in model.Student.parameters()) p.add_(torch.ones_like(p));            // a student the EMA would pull towards
        StepTimings.Reset();
        StepTimings.Enabled = true;
        try
        {
            var terms = FsrTraining.Loss(model, par, images, labels, 1, new Random(3));
            FsrTraining.UpdateTeacher(model, 1, 4);
            bool moved = model.Teacher.parameters().Zip(teacherBefore).Any(t => !t.First.eq(t.Second).all().item<bool>());
            bool centres = model.ClassCenter.abs().sum().item<float>() > 0 || model.PatchCenter.abs().sum().item<float>() > 0;
            return (terms.Parts.Select(p => p.Name).ToList(), StepTimings.Totals.Keys.ToList(), moved, centres);
        }
        finally
        {
            StepTimings.Enabled = false;
            StepTimings.Reset();
        }
    }

    static readonly string[] Teacher = [FsrTraining.TeacherForwardSection, FsrTraining.TeacherUpdateSection];

    [Fact]
    public void Both_terms_on_run_the_teacher_and_report_both_distillation_parts()
    {
        var (parts, sections, teacherMoved, centresMoved) = Step(FsrMethodTests.TinyConfig());
        Assert.Equal(["cls", "cls_aux", "ptc", "seg", "seg_skipped", "fsr_cls", "fsr_pat", "mask_ratio"], parts);
        Assert.All(Teacher, s => Assert.Contains(s, sections));
        Assert.True(teacherMoved);
        Assert.True(centresMoved);
    }

    [Fact]
    public void Both_terms_off_is_the_base_step_without_mask_teacher_or_centres()
    {
        var (parts, sections, teacherMoved, centresMoved) = Step(FsrMethodTests.TinyConfig() with { UseCertainDistillation = false, UseUncertainDistillation = false });
        Assert.Equal(["cls", "cls_aux", "ptc", "seg", "seg_skipped"], parts);
        Assert.All(Teacher, s => Assert.DoesNotContain(s, sections));
        Assert.False(teacherMoved);
        Assert.False(centresMoved);
    }

    [Theory]
    [InlineData(true, false, "fsr_cls")]
    [InlineData(false, true, "fsr_pat")]
    public void One_term_alone_keeps_masking_and_the_teacher(bool certain, bool uncertain, string part)
    {
        var (parts, sections, teacherMoved, _) = Step(FsrMethodTests.TinyConfig() with { UseCertainDistillation = certain, UseUncertainDistillation = uncertain });
        Assert.Equal(new[] { "cls", "cls_aux", "ptc", "seg", "seg_skipped", part, "mask_ratio" }, parts);
        Assert.All(Teacher, s => Assert.Contains(s, sections));
        Assert.True(teacherMoved);
    }

    /// <summary>A zero weight only leaves the term out of the sum: masking, the teacher forward and its update still run (hence the switches).</summary>
    [Fact]
    public void Zero_weights_do_not_skip_the_teacher()
    {
        var (parts, sections, teacherMoved, _) = Step(FsrMethodTests.TinyConfig() with { CertainDistillation = new LossWeight(0), UncertainDistillation = new LossWeight(0) });
        Assert.Equal(["cls", "cls_aux", "ptc", "seg", "seg_skipped", "mask_ratio"], parts);
        Assert.All(Teacher, s => Assert.Contains(s, sections));
        Assert.True(teacherMoved);
    }
}
