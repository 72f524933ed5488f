// Test guest entry: the PVH note, the 32-bit entry that switches to long mode, the application
// processors' real-mode trampoline, and the interrupt stubs.
//
// PVH entry state (Xen's HVM direct boot ABI): 32-bit protected mode, paging off, flat CS/DS/SS,
// %ebx = physical address of hvm_start_info.

#define MSR_EFER 0xc0000080

.section .note.pvh, "a"
.align 4
.long 4                 /* namesz: "Xen\0" */
.long 4                 /* descsz */
.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
.asciz "Xen"
.align 4
.long pvh_start32

.section .text.boot, "ax"
.code32
.globl pvh_start32
pvh_start32:
    cli
    cld
    movl %ebx, start_info_paddr
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                 /* CR4.PAE */
    movl %eax, %cr4
    movl $MSR_EFER, %ecx
    rdmsr
    orl $0x100, %eax                /* EFER.LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax           /* CR0.PG | CR0.PE */
    movl %eax, %cr0
    lgdt gdt_desc
    ljmp $0x08, $bsp_start64

.code64
bsp_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $bsp_stack_top, %rsp
    movl start_info_paddr, %edi
    call guest_main
1:  cli
    hlt
    jmp 1b

/* Application processors arrive here in long mode from the trampoline. */
.globl ap_start64
ap_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq ap_stack_top, %rsp
    call ap_main
1:  cli
    hlt
    jmp 1b

/*
 * The AP trampoline. The BSP copies [ap_trampoline, ap_trampoline_end) to physical 0x8000 and
 * sends SIPI with vector 0x08, so an AP starts here in real mode with CS = 0x0800, IP = 0. The
 * code uses only offsets relative to ap_trampoline and absolute addresses computed from 0x8000.
 */
#define TRAMP(sym) (0x8000 + (sym - ap_trampoline))
.globl ap_trampoline, ap_trampoline_end
.code16
ap_trampoline:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (tramp_gdt_desc - ap_trampoline)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $TRAMP(ap_tramp32)
.code32
ap_tramp32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $MSR_EFER, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmp $0x08, $ap_start64
.align 8
tramp_gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
ap_trampoline_end:

/* Interrupt stubs: push a zero error code where the CPU does not, then the vector number. */
.code64
.section .text
.globl interrupt_stubs
.align 16
interrupt_stubs:
.set vec, 0
.rept 256
    .align 16
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp interrupt_common
    .set vec, vec + 1
.endr

interrupt_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    movq %rsp, %rbx
    andq $-16, %rsp
    call interrupt_dispatch
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

.section .data
.align 16
.globl gdt
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: flat data */
    .quad 0x00cf9a000000ffff    /* 0x18: 32-bit code (AP trampoline) */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt

/* Identity map of the first 4 GiB with 2 MiB pages; 3-4 GiB (MMIO) uncached (PCD|PWT). */
.align 4096
.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:
    .quad boot_pdpt + 0x3
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 0x3
    .quad boot_pd + 0x1000 + 0x3
    .quad boot_pd + 0x2000 + 0x3
    .quad boot_pd + 0x3000 + 0x3
    .fill 508, 8, 0
boot_pd:
.set i, 0
.rept 2048
    .if i >= 1536
    .quad (i << 21) | 0x9b
    .else
    .quad (i << 21) | 0x83
    .endif
    .set i, i + 1
.endr

.globl start_info_paddr, ap_stack_top
start_info_paddr: .long 0
.align 8
ap_stack_top: .quad 0

.section .bss
.align 4096
bsp_stack: .skip 16384
bsp_stack_top:
