using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Fsr;

/// <summary>The FSR training step (train_voc.py), as two functions: the loss, and the teacher update after the optimizer step.</summary>
public static class FsrTraining
{
    /// <summary><see cref="StepTimings"/> section of the teacher's forward over both views (no grad).</summary>
    public const string TeacherForwardSection = "teacher forward";

    /// <summary><see cref="StepTimings"/> section of the teacher's EMA update after the optimizer step.</summary>
    public const string TeacherUpdateSection = "teacher EMA update";

    /// <summary>
    /// Total loss at 0-based step <paramref name="step"/> (each weight 0 before its start step; the term is then not computed):
    ///   w_cls·MLSM(cls) + w_aux·MLSM(cls_aux) + w_ptc·PTC + w_seg·SEG + w_c·cer.FSR + w_u·unc.FSR.
    /// Two views are made from the batch (<see cref="RandomViews"/>). View 2 is masked (<see cref="FsrMasking"/>: random before
    /// <see cref="FsrConfig.RandomMaskingSteps"/>, then <see cref="FsrConfig.MaskStrategy"/>) from the student's aux CAM of view 2;
    /// view 1 is never masked. The student sees [view 1; masked view 2], the teacher (no grad) both views unmasked. Classifiers, PTC
    /// (aux CAM of view 1) and SEG (PAR-refined CAM of view 1) act on view 1 only, as ToCo. After the distillation terms the two
    /// teacher centres of <paramref name="model"/> are updated in place. <paramref name="random"/> drives the views and the mask
    /// noise. With both FSR terms off (<see cref="FsrConfig.SelfDistillation"/> false) the student sees view 1 alone: no mask, no
    /// teacher, no projector, no centre update. Parts: cls, cls_aux, ptc, seg (+ seg_skipped), fsr_cls, fsr_pat, mask_ratio.
    /// </summary>
    public static LossTerms Loss(FsrModel model, PixelAdaptiveRefinement par, Tensor images, Tensor classLabels, long step, Random random)
    {
        var config = model.Config;
        var student = model.Student;
        if (classLabels.dim() != 2 || classLabels.shape[0] != images.shape[0] || classLabels.shape[1] != config.NumClasses)
            throw new WeakSegException($"labels must be [{images.shape[0]}, {config.NumClasses}] (batch × classes); got [{string.Join(", ", classLabels.shape)}]");
        var labels = classLabels.to_type(ScalarType.Float32);
        var (view1, view2) = RandomViews.Make(images, random, config.Views);
        long b = images.shape[0];
        var (gridHeight, gridWidth) = student.Encoder.GridFor(view2.shape[2], view2.shape[3]);

        bool distill = config.SelfDistillation;
        Tensor? mask = null, mask2 = null, teacherProjection = null;
        var views = view1;
        if (distill)
        {
            var strategy = step < config.RandomMaskingSteps ? MaskStrategy.Random : config.MaskStrategy;
            var (_, auxCam2) = ToCoMaps.MultiScaleCam(student.CamOnly, view2, config.CamScales);
            long blocks = (long)(gridHeight / config.MaskBlockPatches) * (gridWidth / config.MaskBlockPatches);
            mask2 = FsrMasking.Generate(auxCam2, labels, FsrMasking.Noise(random, b, blocks), strategy, config.Masking, gridHeight, gridWidth);
            mask = torch.cat(new[] { torch.zeros_like(mask2), mask2 }, 0);
            views = torch.cat(new[] { view1, view2 }, 0);
        }

        var output = student.Forward(views, mask, views: distill ? 2 : 1, project: distill);
        if (distill)
            using (StepTimings.Section(TeacherForwardSection))
            using (torch.no_grad()) teacherProjection = model.Teacher.Project(views);

        var loss = new WeightedLossSum();
        double w;
        if ((w = config.Classification.At(step)) > 0) loss.Add("cls", w, ToCoLoss.MultilabelSoftMargin(output.ClassLogits, labels));
        if ((w = config.AuxClassification.At(step)) > 0) loss.Add("cls_aux", w, ToCoLoss.MultilabelSoftMargin(output.AuxLogits, labels));
        double wPtc = config.PatchContrast.At(step), wSeg = config.Segmentation.At(step);
        if (wPtc > 0 || wSeg > 0)
        {
            var (cam1, auxCam1) = ToCoMaps.MultiScaleCam(student.CamOnly, view1, config.CamScales);
            if (wPtc > 0) loss.Add("ptc", wPtc, ToCoTraining.PatchContrastTerm(output.FeatureMap, auxCam1, labels, config.TokenLabelOptions));
            if (wSeg > 0)
                ToCoTraining.AddSegmentation(loss, wSeg, par, view1, cam1, labels, output.Segmentation, config.TokenLabelOptions, config.ParDownScale,
                    config.SegmentationReduction, config.SkipSegmentationWithoutBackgroundOrForeground);
        }

        if (teacherProjection is not null)
        {
            double teacherTemperature = config.TeacherTemperatureAt(step);
            if (config.UseCertainDistillation && (w = config.CertainDistillation.At(step)) > 0)
                loss.Add("fsr_cls", w, FsrLoss.CertainDistillation(teacherProjection, output.Projection, model.ClassCenter, teacherTemperature, config.StudentTemperature));
            if (config.UseUncertainDistillation && (w = config.UncertainDistillation.At(step)) > 0)
                loss.Add("fsr_pat", w, FsrLoss.UncertainDistillation(teacherProjection, output.Projection, mask!, model.PatchCenter, teacherTemperature, config.StudentTemperature));
            using (torch.no_grad())
            {
                model.ClassCenter.copy_(FsrLoss.UpdatedClassCenter(model.ClassCenter, teacherProjection, config.CenterMomentum));
                model.PatchCenter.copy_(FsrLoss.UpdatedPatchCenter(model.PatchCenter, teacherProjection, config.CenterMomentum));
            }
            loss.Report("mask_ratio", mask2!.to_type(ScalarType.Float32).mean());
        }
        return loss.ToLossTerms("FSR", step);
    }

    /// <summary>
    /// The teacher update after step <paramref name="step"/>'s optimizer step: EMA with the momentum of the cosine schedule from
    /// <see cref="FsrConfig.TeacherMomentum"/> to 1 over <paramref name="totalSteps"/> (the projector from
    /// <see cref="FsrConfig.ProjectorTeacherMomentum"/> when set).
    /// </summary>
    public static void UpdateTeacher(FsrModel model, long step, long totalSteps)
    {
        var config = model.Config;
        if (!config.SelfDistillation) return;                       // no FSR term: the teacher is not used
        using var timing = StepTimings.Section(TeacherUpdateSection);
        double momentum = FsrLoss.TeacherMomentum(step, totalSteps, config.TeacherMomentum);
        double? projectorMomentum = config.ProjectorTeacherMomentum is { } pm ? FsrLoss.TeacherMomentum(step, totalSteps, pm) : null;
        model.UpdateTeacher(momentum, projectorMomentum);
    }
}
